# vggserve, CPU image. Build: docker build -t vggserve .
# Run:   docker run -p 8080:8080 -e VGGSERVE_API_TOKEN=change-me \
#          -v $PWD/weights:/app/weights -v $PWD/datasets:/app/datasets -v vggserve-data:/app/data vggserve
# (it listens on 0.0.0.0 inside the container, so it refuses to start without a token unless
# VGGSERVE_INSECURE_NO_AUTH=true is set.)
#
# LibTorch comes from the PyTorch 2.9.0 wheel (the version burn-tch 0.22 is built for). The CPU
# image installs the CPU-only wheel from PyTorch's own index (TORCH_INDEX); for a CUDA image,
# build with --build-arg TORCH_INDEX=https://pypi.org/simple (the CUDA 12.8 wheel), keep
# CUDA_LIBS=1 so the nvidia-* libraries are copied too, and base RUNTIME on an nvidia/cuda
# runtime image; run with --gpus all -e VGGSERVE_DEVICE=cuda.
ARG RUNTIME=debian:bookworm-slim

FROM rust:1.95-bookworm AS build
ARG TORCH_INDEX=https://download.pytorch.org/whl/cpu
ARG CUDA_LIBS=0
RUN apt-get update && apt-get install -y --no-install-recommends python3 python3-venv \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
# The venv first, so that source changes do not reinstall PyTorch.
RUN python3 -m venv .venv \
    && .venv/bin/pip install --no-cache-dir --index-url "$TORCH_INDEX" torch==2.9.0 \
    && ln -sfn "$(.venv/bin/python -c 'import os, torch; print(os.path.relpath(os.path.dirname(torch.__file__), ".venv"))')" .venv/libtorch
COPY Cargo.toml Cargo.lock build.rs ./
COPY .cargo .cargo
COPY src src
COPY migrations migrations
RUN cargo build --release --locked --bin vggserve
# Gather what the binary loads at run time at the same absolute path as in this stage:
# the rpath baked in by build.rs points at /app/.venv/libtorch/lib.
RUN mkdir -p /out/app/.venv/libtorch \
    && cp -a --parents "$(readlink -f .venv/libtorch)/lib" /out/ \
    && ln -sfn "$(readlink -f .venv/libtorch)" /out/app/.venv/libtorch \
    && if [ "$CUDA_LIBS" = 1 ] && [ -d "$(readlink -f .venv/libtorch)/../nvidia" ]; then \
         cp -a --parents "$(readlink -f .venv/libtorch)/../nvidia" /out/; fi

FROM ${RUNTIME}
RUN apt-get update && apt-get install -y --no-install-recommends ca-certificates libgomp1 \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --home /app vggserve
COPY --from=build /out/ /
COPY --from=build /app/target/release/vggserve /usr/local/bin/vggserve
COPY static /app/static
WORKDIR /app
RUN mkdir -p /app/data /app/datasets /app/weights && chown -R vggserve /app/data
USER vggserve
ENV VGGSERVE_ADDR=0.0.0.0:8080 \
    VGGSERVE_DATA_DIR=/app/data \
    VGGSERVE_DATASETS_DIR=/app/datasets \
    VGGSERVE_WEIGHTS=/app/weights/vgg16.safetensors \
    VGGSERVE_DEVICE=cpu
EXPOSE 8080
HEALTHCHECK CMD ["/bin/bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080"]
ENTRYPOINT ["vggserve"]
CMD ["serve"]
