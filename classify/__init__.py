"""Dual-stream Dale classifiers on MNIST and CIFAR-10, trained by ED, DFA or BP (``python -m classify``)."""
