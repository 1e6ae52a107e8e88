# One image for every fedredirect process; the compose file / pod spec picks the subcommand:
#   checker --config ...   router --host 0.0.0.0 ...   member-sim --name ...   status
#
# BASE_IMAGE is any Debian-like image with python3 (>= 3.11) and its venv module: the
# official python image by default, or a plain Debian with python3-venv, which has no `pip`
# command: hence the virtualenv. docs/compose.md builds one with debootstrap.
ARG BASE_IMAGE=python:3.12-slim
FROM ${BASE_IMAGE}

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PATH=/opt/fedredirect/bin:$PATH

RUN python3 -m venv /opt/fedredirect

# The dependencies and build requirements first, from pyproject.toml alone, so a source
# change rebuilds only the last layer and pip goes to the network only when they change.
WORKDIR /src
COPY pyproject.toml /src/
RUN python3 -c "import tomllib; p = tomllib.load(open('pyproject.toml', 'rb')); print(*p['build-system']['requires'], *p['project']['dependencies'], sep='\n')" > /tmp/requirements.txt \
 && pip install --no-cache-dir -r /tmp/requirements.txt \
 && rm /tmp/requirements.txt

# .dockerignore lets in only what `pip install .` reads.
COPY . /src
RUN pip install --no-cache-dir --no-deps --no-build-isolation . \
 && groupadd --system --gid 10001 fedredirect \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin fedredirect

# Numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Run outside /src so `python -c`/`-m` in the container import the installed package.
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["fedredirect"]
CMD ["--help"]
