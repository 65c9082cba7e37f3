# Two images from one file (docker-compose.yml builds both):
#   target "mlflow": the MLflow tracking server only (no torch), SQLite + artifacts in /data
#   target "sweep":  salsweep with CPU torch; `salsweep sweep launch sweeps/default.yaml`
ARG PYTHON_IMAGE=python:3.11-slim

# ---------------------------------------------------------------------------- mlflow
FROM ${PYTHON_IMAGE} AS mlflow
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
RUN pip install mlflow==3.17.2
RUN useradd --create-home --uid 1000 mlflow && mkdir /data && chown mlflow:mlflow /data
USER mlflow
WORKDIR /data
EXPOSE 5000
# docker-compose.yml overrides this command (it adds --allowed-hosts for its network).
CMD ["mlflow", "server", \
     "--backend-store-uri", "sqlite:////data/mlflow.db", \
     "--serve-artifacts", "--artifacts-destination", "/data/mlartifacts", \
     "--host", "0.0.0.0", "--port", "5000", "--workers", "1"]

# ---------------------------------------------------------------------------- sweep
FROM ${PYTHON_IMAGE} AS sweep
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONUNBUFFERED=1
# The CPU build of torch first, from PyTorch's CPU index, so that installing the project
# does not pull a multi-GB CUDA build.
RUN pip install torch==2.13.0 --index-url https://download.pytorch.org/whl/cpu
WORKDIR /app
COPY pyproject.toml README.md cli.py ./
COPY loss ./loss
COPY trainer ./trainer
COPY studies ./studies
COPY sweeps ./sweeps
RUN pip install .
RUN useradd --create-home --uid 1000 salsweep && mkdir /data && chown salsweep:salsweep /data
USER salsweep
# Data dir: Optuna's SQLite file (unless SALSWEEP_STORAGE says otherwise), trial outputs.
ENV SALSWEEP_HOME=/data
ENTRYPOINT ["salsweep"]
CMD ["sweep", "launch", "sweeps/default.yaml"]
