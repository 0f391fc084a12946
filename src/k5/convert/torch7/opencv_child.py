"""Run a ``.t7`` network with OpenCV's Torch importer; a script for a separate Python that has ``cv2`` 4.x.

``python opencv_child.py NET.t7 INPUT.npy OUTPUT.npy``: imports only NumPy and cv2 (not k5), so it runs in a
virtual environment made for OpenCV (``.ci/oracle-opencv.sh``). Arrays are read without pickle.
"""

from __future__ import annotations

import sys


def main(argv: list[str]) -> int:
    import cv2
    import numpy as np

    if len(argv) != 3:
        print("usage: opencv_child.py NET.t7 INPUT.npy OUTPUT.npy", file=sys.stderr)
        return 2
    net_path, in_path, out_path = argv
    if not hasattr(cv2.dnn, "readNetFromTorch"):
        print(f"cv2 {cv2.__version__} has no dnn.readNetFromTorch (OpenCV 5 removed it)", file=sys.stderr)
        return 3
    net = cv2.dnn.readNetFromTorch(net_path)
    net.setInput(np.ascontiguousarray(np.load(in_path, allow_pickle=False), dtype=np.float32))
    np.save(out_path, np.asarray(net.forward()), allow_pickle=False)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
