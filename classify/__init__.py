"""Dual-stream Dale classifiers on MNIST-format sets, CIFAR-10 and image folders, trained by ED, DFA,
learned feedback (np) or BP (``python -m classify``)."""
