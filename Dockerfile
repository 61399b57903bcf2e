# syntax=docker/dockerfile:1
# One image for every service (docs/architecture.md "One binary, many targets"): the target picks the modules.
#   docker build -t llmtune .                         # serves everything in one process
#   docker build --build-arg TARGET=gateway -t llmtune-gateway .
#   docker run -e LLMTUNE_TARGET=inference llmtune    # or: docker run llmtune serve --target inference
ARG DOTNET_VERSION=10.0

FROM mcr.microsoft.com/dotnet/sdk:${DOTNET_VERSION} AS build
ARG TARGETARCH
WORKDIR /src
COPY . .
# The package cache is a build cache, so a code change does not download every package again.
RUN --mount=type=cache,id=llmtune-nuget,target=/root/.nuget/packages \
    dotnet publish host/LLMTune.Host -c Release -o /app -p:UseAppHost=false
# LLamaSharp.Backend.Cpu ships llama.cpp/ggml for every OS under runtimes/<rid>/native/<cpu variant>/; the engine
# loads the variant LLamaSharp picks from there (engine/LLMTune.Engine/Native). Keep only this image's Linux natives.
RUN arch=$([ "$TARGETARCH" = "arm64" ] && echo arm64 || echo x64) \
 && find /app/runtimes -mindepth 1 -maxdepth 1 -type d \( -name 'win*' -o -name 'osx*' -o -name 'linux-musl-*' -o \( -name 'linux-*' ! -name "linux-$arch" \) \) -exec rm -rf {} + \
 && test -f "/app/runtimes/linux-$arch/native/noavx/libggml-base.so" -o -f "/app/runtimes/linux-$arch/native/libggml-base.so"

FROM mcr.microsoft.com/dotnet/aspnet:${DOTNET_VERSION} AS runtime
# libgomp1: the Linux ggml build links OpenMP; curl: the HEALTHCHECK below.
RUN apt-get update \
 && apt-get install -y --no-install-recommends libgomp1 curl \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY --from=build /app .
# The image's files stay root-owned and read-only to the service; only ./data (embedded store, artifacts, caches,
# training scratch) is writable. 1654 is the unprivileged `app` user of the .NET base images, numeric so that
# Kubernetes' runAsNonRoot can verify it.
RUN mkdir -p /app/data/artifacts && chown -R 1654:1654 /app/data
USER 1654:1654
VOLUME /app/data

# The modules to run: all (the default), or gateway, inference, finetune, batch, webhooks, billing, or a comma list.
ARG TARGET=all
ENV LLMTUNE_TARGET=${TARGET}
EXPOSE 8080
# Liveness only: /healthz answers while the process serves; readiness (/readyz: store, bus, models) is the orchestrator's.
HEALTHCHECK --interval=10s --timeout=3s --start-period=60s --retries=3 \
  CMD curl -fsS -o /dev/null http://127.0.0.1:8080/healthz || exit 1
ENTRYPOINT ["dotnet", "llmtune.dll"]
CMD ["serve"]
