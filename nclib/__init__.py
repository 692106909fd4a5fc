"""nclib: neural-collapse and other transferability scores, and the tools to evaluate them.

Companion to Suresh, Abrol & Thakur, "Pitfalls in Measuring Neural Transferability".
"""

__version__ = "0.1.0"
