"""The pipeline's stages, one module each, in the order :func:`nclib.pipeline.build` runs them.

``data`` (splits and spectrograms, in memory) -> ``pretrain`` (the audio zoo on its source tasks) ->
``embeddings`` -> ``transfer`` (the ground truth) -> ``scores`` -> ``studies`` (Figures 1 and 4, the pitfalls
sweeps). Each is a set of plain functions from a profile to a result cached in :mod:`nclib.cache`, keyed by the
result's inputs and :func:`nclib.cache.code_digest` of the stage's module -- its code and the code of every nclib
module it imports -- so editing a module re-runs the stages that import it, and only those.
"""
