"""Audio models of Table 1 of "Pitfalls in Measuring Neural Transferability": DCASE 2018 baseline, CNN and CRNN.

Every model takes a batch of log-mel spectrograms, B x 1 x n_mels x frames (any number of frames), and returns
B x n_classes source-task logits. Each sets ``penultimate`` (the module whose output, B x D, is the embedding) and
``has_source_head``, ``head_name`` (the module ``nclib.train.replace_head`` swaps).

Parameter counts include the classification head; with 10 classes (DCASE 2018 Task 1A scenes, GTZAN genres):

=================  ============  ==================  ==============
model              parameters    Table 1 of paper    embedding dim
=================  ============  ==================  ==============
``DcaseBaseline``  4,309,450     4.31 M              512
``Cnn``            425,434       0.43 M              128
``Crnn``           524,506       0.53 M              128
=================  ============  ==================  ==============
"""

from __future__ import annotations

import torch
from torch import nn

_KONG = (
    "Q. Kong, T. Iqbal, Y. Xu, W. Wang, M. D. Plumbley. DCASE 2018 Challenge Surrey cross-task convolutional "
    "neural network baseline. DCASE 2018 Workshop; code: github.com/qiuqiangkong/dcase2018_task1 (BaselineCnn)"
)


class ConvBlock(nn.Sequential):
    """5 x 5 convolution with stride 2 (no bias), batch norm, ReLU: the layer of Kong et al.'s 4-layer CNN."""

    def __init__(self, in_channels: int, out_channels: int) -> None:
        conv = nn.Conv2d(in_channels, out_channels, kernel_size=5, stride=2, padding=2, bias=False)
        nn.init.kaiming_uniform_(conv.weight, nonlinearity="relu")  # Kong et al.'s init_layer: U(+-sqrt(6 / fan_in))
        super().__init__(conv, nn.BatchNorm2d(out_channels), nn.ReLU(inplace=True))


class GlobalMaxPool(nn.Module):
    """B x C x F x T -> B x C: maximum over frequency and time (the pooling of Kong et al.'s baseline)."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.amax(dim=(2, 3))


class TimeMean(nn.Module):
    """B x T x H -> B x H: mean over time."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mean(dim=1)


def _head(in_features: int, n_classes: int) -> nn.Linear:
    fc = nn.Linear(in_features, n_classes)
    nn.init.kaiming_uniform_(fc.weight, nonlinearity="relu")
    nn.init.zeros_(fc.bias)
    return fc


class DcaseBaseline(nn.Module):
    """DCASE 2018 baseline CNN (Kong et al. 2018, the 4-layer "AlexNet-like" CNN, best of theirs on Task 1).

    Layers: 4 x [Conv 5x5 stride 2 (no bias) -> BatchNorm -> ReLU] with 64, 128, 256, 512 channels; global max
    pooling over frequency and time (``pool``, the 512-d embedding); Linear(512, n_classes).
    Parameters: 4,304,320 + 513 * n_classes (4,309,450 with 10 classes = 4.31 M of Table 1).
    Their 8-layer VGG-like CNN (two 3x3 convolutions per block) has 4,691,274 parameters, 9 % above Table 1.

    Reference: Kong et al. 2018 (github.com/qiuqiangkong/dcase2018_task1, ``BaselineCnn``); the model returns logits
    (theirs returns log-softmax) and takes B x 1 x n_mels x frames (theirs B x frames x n_mels; the 5x5 kernels
    make the two orientations equivalent in parameters).
    """

    penultimate = "pool"
    head_name = "fc"

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBlock(1, 64), ConvBlock(64, 128), ConvBlock(128, 256), ConvBlock(256, 512))
        self.pool = GlobalMaxPool()
        self.fc = _head(512, n_classes)
        self.has_source_head = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))


class Cnn(nn.Module):
    """Smaller CNN of the paper ("a smaller version of this baseline model with lesser layers").

    Layers: 3 x [Conv 5x5 stride 2 (no bias) -> BatchNorm -> ReLU] with 48, 96, 128 channels; global max pooling
    (``pool``, the 128-d embedding); Linear(128, n_classes).
    Parameters: 424,144 + 129 * n_classes (425,434 with 10 classes, 428,659 with 35; Table 1: 0.43 M).
    The paper gives only "fewer layers" and the count; the widths are nclib's choice: the baseline's layer type,
    one layer fewer, widths chosen to meet 0.43 M.
    """

    penultimate = "pool"
    head_name = "fc"

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBlock(1, 48), ConvBlock(48, 96), ConvBlock(96, 128))
        self.pool = GlobalMaxPool()
        self.fc = _head(128, n_classes)
        self.has_source_head = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.features(x)))


class Crnn(nn.Module):
    """CRNN of the paper: the ``Cnn`` convolutions followed by a GRU.

    Layers: the 3 convolutional layers of ``Cnn`` (48, 96, 128 channels); maximum over frequency -> B x T/8 x 128;
    unidirectional GRU(128 -> 128); mean over time (``pool``, the 128-d embedding); Linear(128, n_classes).
    Parameters: 424,144 + 99,072 (GRU) + 129 * n_classes (524,506 with 10 classes, 527,731 with 35;
    Table 1: 0.53 M). A bidirectional GRU with 64 units per direction would give 0.50 M, further from Table 1.
    """

    penultimate = "pool"
    head_name = "fc"

    def __init__(self, n_classes: int) -> None:
        super().__init__()
        self.features = nn.Sequential(ConvBlock(1, 48), ConvBlock(48, 96), ConvBlock(96, 128))
        self.gru = nn.GRU(128, 128, batch_first=True)
        self.pool = TimeMean()
        self.fc = _head(128, n_classes)
        self.has_source_head = True

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        seq = self.features(x).amax(dim=2).transpose(1, 2)  # B x C x F x T -> B x T x C
        return self.fc(self.pool(self.gru(seq)[0]))


_OURS = "Suresh, Abrol & Thakur, Pitfalls in Measuring Neural Transferability (Table 1); widths by nclib"

# Zoo of Table 1 / Figure 3. The source task of the active profile fixes n_classes (paper: DCASE 2018 Task 1A,
# 10 scenes; GTZAN, 10 genres; Speech Commands, 35 words; mini: nclib's synthetic stand-ins).
ZOO_INFO: dict[str, dict[str, str]] = {
    "dcase_asc": {
        "architecture": "DcaseBaseline",
        "source_task": "acoustic scenes",
        "table1": "4.31 M",
        "citation": _KONG,
    },
    "cnn_music": {"architecture": "Cnn", "source_task": "music genres", "table1": "0.43 M", "citation": _OURS},
    "cnn_speech": {"architecture": "Cnn", "source_task": "speech commands", "table1": "0.43 M", "citation": _OURS},
    "crnn_music": {"architecture": "Crnn", "source_task": "music genres", "table1": "0.53 M", "citation": _OURS},
    "crnn_speech": {"architecture": "Crnn", "source_task": "speech commands", "table1": "0.53 M", "citation": _OURS},
}
_ARCHITECTURES: dict[str, type[nn.Module]] = {"DcaseBaseline": DcaseBaseline, "Cnn": Cnn, "Crnn": Crnn}


def build_audio(name: str, n_classes: int) -> nn.Module:
    """Build the randomly initialised audio zoo model ``name`` (a key of ``ZOO_INFO``) with ``n_classes`` outputs.

    Initialisation uses torch's global generator: seed it (``torch.manual_seed``) before calling.
    """
    if name not in ZOO_INFO:
        raise ValueError(f"unknown audio model {name!r}; choose one of {sorted(ZOO_INFO)}")
    if n_classes < 2:
        raise ValueError(f"n_classes must be at least 2, got {n_classes}")
    return _ARCHITECTURES[ZOO_INFO[name]["architecture"]](n_classes)
