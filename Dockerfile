# One image for every fedredirect process; the compose file / pod spec picks the subcommand:
#   checker --config ...   router --host 0.0.0.0 ...   member-sim --name ...   status
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY . /src
RUN pip install --no-cache-dir . \
 && groupadd --system --gid 10001 fedredirect \
 && useradd --system --uid 10001 --gid 10001 --no-create-home --shell /usr/sbin/nologin fedredirect

# Numeric so that Kubernetes' runAsNonRoot can verify it without reading /etc/passwd.
USER 10001:10001
# Run outside /src so `python -c`/`-m` in the container import the installed package.
WORKDIR /tmp
EXPOSE 8080
ENTRYPOINT ["fedredirect"]
CMD ["--help"]
