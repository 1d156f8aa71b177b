#!/usr/bin/env bash
# Prepares wheelhouse/ (git-ignored) for bench/gpu_smoke.sh: the wheels, for Python 3.12 on
# x86-64 Linux, of what the GPU machine lacks. That machine has Python 3.12 with torch,
# torchvision (so numpy and pillow) and a CUDA JAX (so scipy) but reaches no registry. Every wheel
# is fetched with --no-deps so that none replaces its torch or JAX; the list holds what the smoke
# run imports (found with `python -X importtime`), not the viewers, dataframes and SQL storage it
# does not, so that the folder fits the device tool's 64 MiB carry. Pins: the versions this
# project is tested with (constraints.txt pins torch; the rest as installed by `pip install .[jax,test]`).
#
#     bash bench/gpu_wheelhouse.sh        # then: run --carry wheelhouse "bash bench/gpu_smoke.sh"
set -euo pipefail
cd "$(dirname "$0")/.."
pip="${PIP:-.venv/bin/pip}"
rm -rf wheelhouse
"$pip" download -q --no-deps --only-binary=:all: --python-version 3.12 --implementation cp \
    --platform manylinux2014_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux_2_27_x86_64 \
    --platform manylinux_2_28_x86_64 --platform any -d wheelhouse \
    stable-baselines3==2.9.2 sb3-contrib==2.9.2 rl-zoo3==2.9.2 sb3-team-hf-integration==3.2 huggingface-hub==2.4.0 \
    gymnasium==1.4.0 farama-notifications==0.0.6 cloudpickle==3.1.3 mujoco==4.0.0 mujoco-core==4.0.0 \
    mujoco-mjx==3.17.0 glfw==2.11.0 pyopengl==3.1.10 brax==0.14.2 flax==0.12.8 optax==0.2.8 jaxopt==0.8.5 \
    orbax-checkpoint==0.12.8 etils==1.15.0 ml-collections==1.1.0 absl-py==2.5.1 trimesh==5.2.0 \
    tensorboardx==2.6.5 protobuf==7.36.2 msgpack==1.2.4 treescope==0.1.10 flask==3.1.3 flask-cors==6.0.5 \
    werkzeug==3.1.9 itsdangerous==2.2.0 blinker==1.9.0 click==8.5.1 craftax==1.6.1 imageio==2.38.2 \
    matplotlib==3.11.2 contourpy==1.3.3 cycler==0.12.1 fonttools==4.68.0 kiwisolver==1.5.1 pyparsing==3.3.3 \
    python-dateutil==2.9.0.post0 six==1.17.0 optuna==5.0.0 colorlog==6.12.0 pyyaml==6.0.4 tqdm==4.70.1 \
    rich==15.0.0 markdown-it-py==4.3.0 mdurl==0.1.2 pygments==2.21.0 pytablewriter==1.2.1 dataproperty==1.1.1 \
    mbstrdecoder==1.1.5 pathvalidate==3.3.1 tabledata==1.3.5 tcolorpy==0.1.7 typepy==1.3.5 chardet==6.0.0.post1 \
    shimmy==2.0.1 packaging==26.4 psutil==7.2.2 requests==2.34.2 urllib3==2.8.0 certifi==2026.10.19.post1 \
    charset-normalizer==3.5.3 idna==3.20 httpx2==2.16.2 httpcore2==2.16.2 h11==0.16.0 anyio==4.16.0 \
    truststore==0.10.5 wasabi==1.1.3 pytest==9.0.1 iniconfig==2.3.0 pluggy==1.6.0
du -sh wheelhouse
