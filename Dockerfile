# Three images from one file (docker-compose.yml builds them):
#   target "mlflow": the MLflow tracking server only (no torch), SQLite + artifacts in /data,
#                    with salsweep's app plugin (the UI opens in the model-training layout)
#   target "cuda":   salsweep with the CUDA build of torch 2.13.0 (needs the NVIDIA Container
#                    Toolkit on the host and a GPU reservation: `--gpus all`, or compose's
#                    `gpu` profile); device `auto` trains on the GPU with bf16 autocast
#   target "cpu":    salsweep with the CPU build of torch 2.13.0 (the default: last stage)
# Both salsweep images run `salsweep sweep launch sweeps/default.yaml` unless told otherwise.
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------- app
# The project as a wheel, without dependencies: both salsweep images install it on top of
# their own torch build, so that installing the project never swaps torch for another one.
FROM ${PYTHON_IMAGE} AS app
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md cli.py ./
COPY loss ./loss
COPY trainer ./trainer
COPY studies ./studies
COPY sweeps ./sweeps
RUN pip wheel --no-deps --wheel-dir /wheels .

# ---------------------------------------------------------------------------- mlflow
FROM ${PYTHON_IMAGE} AS mlflow
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install mlflow==3.17.2
# salsweep's MLflow app plugin (`--app-name salsweep`, studies/tracking/ui_app.py): the UI
# opens in the model-training layout in any browser. The project without its dependencies:
# the plugin imports MLflow only (no torch).
COPY --from=app /wheels /wheels
RUN pip install --no-deps /wheels/*.whl && rm -rf /wheels
RUN useradd --create-home --uid 1000 mlflow && mkdir /data && chown mlflow:mlflow /data
USER mlflow
WORKDIR /data
EXPOSE 5000
# docker-compose.yml overrides this command (it adds --allowed-hosts for its network).
CMD ["mlflow", "server", \
     "--backend-store-uri", "sqlite:////data/mlflow.db", \
     "--serve-artifacts", "--artifacts-destination", "/data/mlartifacts", \
     "--host", "0.0.0.0", "--port", "5000", "--workers", "1", "--app-name", "salsweep"]

# ---------------------------------------------------------------------------- cuda
FROM ${PYTHON_IMAGE} AS cuda
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# torch 2.13.0 is built for CUDA 12.6, 12.9, 13.0 and 13.2 (there is no cu128 build of
# 2.13). cu130 is what PyPI serves on Linux and needs an NVIDIA driver >= 580; on an older
# driver (>= 525) build with `--build-arg TORCH_CUDA=cu126` (or TORCH_CUDA=cu126 in the
# environment of docker-compose). The wheels bring their own CUDA libraries; the
# NVIDIA Container Toolkit mounts the driver.
ARG TORCH_CUDA=cu130
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/${TORCH_CUDA}
# The toolkit mounts the driver's compute libraries for these capabilities.
ENV NVIDIA_DRIVER_CAPABILITIES=compute,utility
COPY --from=app /wheels /wheels
# torch is already there (2.13.0+cu130 satisfies torch==2.13.0): pip keeps it.
RUN pip install /wheels/*.whl && rm -rf /wheels
COPY sweeps /app/sweeps
WORKDIR /app
RUN useradd --create-home --uid 1000 salsweep && mkdir /data && chown salsweep:salsweep /data
USER salsweep
# Data dir: Optuna's SQLite file (unless SALSWEEP_STORAGE says otherwise), trial outputs.
ENV SALSWEEP_HOME=/data
ENTRYPOINT ["salsweep"]
CMD ["sweep", "launch", "sweeps/default.yaml"]

# ---------------------------------------------------------------------------- cpu
FROM ${PYTHON_IMAGE} AS cpu
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# The CPU build of torch first, from PyTorch's CPU index, so that installing the project
# does not pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
COPY --from=app /wheels /wheels
RUN pip install /wheels/*.whl && rm -rf /wheels
COPY sweeps /app/sweeps
WORKDIR /app
RUN useradd --create-home --uid 1000 salsweep && mkdir /data && chown salsweep:salsweep /data
USER salsweep
ENV SALSWEEP_HOME=/data
ENTRYPOINT ["salsweep"]
CMD ["sweep", "launch", "sweeps/default.yaml"]
