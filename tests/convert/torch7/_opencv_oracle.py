"""The oracle: OpenCV's own Torch7 importer runs a .t7 network. Run with the OpenCV venv's Python (not k5's).

``python _opencv_oracle.py NET.t7 INPUT.npy OUTPUT.npy``
"""

import sys

import cv2
import numpy as np

net_path, in_path, out_path = sys.argv[1:4]
net = cv2.dnn.readNetFromTorch(net_path)
net.setInput(np.load(in_path, allow_pickle=False).astype(np.float32))
np.save(out_path, net.forward(), allow_pickle=False)
