"""``fastnn.datasets.fashion_mnist.load_data()``, Keras's call: the full Fashion-MNIST as
uint8 arrays ``(x_train, y_train), (x_test, y_test)`` of shapes (60000, 28, 28) / (60000,)
and (10000, 28, 28) / (10000,), from local files (``$FASTNN_DATA``, the user cache,
/usr/share/datasets/fashion-mnist); never downloads. Without the files it returns the
subset bundled with fastnn (9,000 / 2,000 images) and warns, saying where the files go."""
from __future__ import annotations

import warnings


def load_data(path=None):
    from . import datasets
    try:
        return datasets.load_fashion_mnist(path, download=False)
    except FileNotFoundError as e:
        if path is not None:
            raise
        warnings.warn("fashion_mnist.load_data: the full Fashion-MNIST files were not found, so this is the "
                      "subset bundled with fastnn (9,000 training / 2,000 test images, same classes and "
                      f"format). {e}", UserWarning, stacklevel=2)
        return datasets.load_fashion_mnist_subset()
