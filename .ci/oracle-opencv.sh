#!/usr/bin/env bash
# Build the OpenCV oracle venv for the Lua Torch7 (.t7) tests: OpenCV's own importer cv2.dnn.readNetFromTorch.
# opencv-python-headless 4.12 is the last line that has it (OpenCV 5 removed the Torch importer); its wheels need
# numpy < 2.3. torchfile (a Torch7 reader, 2017) is the independent reader the tests compare k5's files with.
# The venv is separate so the main environment's numpy is never touched.
# Idempotent: a venv whose cv2 has readNetFromTorch is left as it is; a broken or half-built one is rebuilt.
# Usage: .ci/oracle-opencv.sh [VENV]   (default: $K5_OPENCV_VENV, else ${XDG_CACHE_HOME:-~/.cache}/k5/oracle-opencv)
set -euo pipefail
venv="${1:-${K5_OPENCV_VENV:-${XDG_CACHE_HOME:-$HOME/.cache}/k5/oracle-opencv}}"
probe='import cv2, numpy, torchfile; assert hasattr(cv2.dnn, "readNetFromTorch"); print("cv2", cv2.__version__, "numpy", numpy.__version__)'
ready() { [ -x "$venv/bin/python" ] && "$venv/bin/python" -c "$probe" 2>/dev/null; }
if out=$(ready); then echo "opencv oracle venv ready: $venv ($out)"; exit 0; fi
mkdir -p "$(dirname "$venv")"
exec 9>"$venv.lock"
flock 9  # two test runs building at once: the second waits, then finds it ready
if out=$(ready); then echo "opencv oracle venv ready: $venv ($out)"; exit 0; fi
rm -rf "$venv"
trap 'rm -rf "$venv"' ERR
python3 -m venv "$venv"
PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/python" -m pip install -q 'opencv-python-headless==4.12.0.88' 'numpy<2.3' 'torchfile==0.1.0'
out=$("$venv/bin/python" -c "$probe")
trap - ERR
echo "opencv oracle venv ready: $venv ($out)"
