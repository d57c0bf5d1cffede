# Astra's production image: the platform (`astra serve`, the default) and, from the same image,
# each instance's runtime (`astra instance run <id>`, started by the Docker runtime adapter).
#
#   docker build -t astra:latest .        then ASTRA_RUNTIME_IMAGE=astra:latest (compose sets it)
#
# NOTE: this file cannot be built on the project's development and CI machines: they reach no
# container registry, so `python:3.11-slim` cannot be pulled. The Docker tests build an equivalent
# image from the host's own interpreter instead (tests/runtime_image.py: same user, entrypoint
# and layout rules). Keep the two in step.
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    LANG=C.UTF-8

# A fixed numeric id: the Docker runtime hands an instance's directory to this user, and
# runAsNonRoot-style checks need a number.
RUN groupadd --gid 10001 astra \
    && useradd --uid 10001 --gid 10001 --home-dir /home/astra --create-home \
       --shell /usr/sbin/nologin astra

WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY astra ./astra
# Installed into site-packages (byte-compiled there): an instance runs on a read-only root.
# constraints.txt: the versions the test suite ran with.
RUN pip install -c constraints.txt . && rm -rf /src

# The platform's data directory belongs to the user, so a named volume mounted here starts
# writable. No VOLUME instruction: instance containers use this image too and must get no
# volume at all (they reach their data through the platform's internal API).
RUN mkdir -p /data && chown 10001:10001 /data
ENV ASTRA_DATA_DIR=/data \
    ASTRA_MODE=production \
    ASTRA_HOST=0.0.0.0
WORKDIR /home/astra
USER 10001:10001

EXPOSE 3100 3000

# One check for both roles. An instance runtime (ASTRA_INSTANCE_ID set) is healthy while its bot
# beats (every 10 s it touches /tmp/astra-heartbeat-<id> in its private tmpfs, besides telling
# the platform); the platform while /health answers 200 (503 when the store cannot be read).
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
  CMD python -c "import os, sys, time, urllib.request; i = os.environ.get('ASTRA_INSTANCE_ID') or ('pool' if os.environ.get('ASTRA_POOL_ID') else ''); sys.exit(0 if time.time() - os.stat('/tmp/astra-heartbeat-%s' % i).st_mtime < 60 else 1) if i else urllib.request.urlopen('http://127.0.0.1:%s/health' % os.environ.get('ASTRA_PORTAL_PORT', '3100'), timeout=4)"

ENTRYPOINT ["astra"]
CMD ["serve"]
