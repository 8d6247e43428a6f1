"""nginx (the Debian package) as the Service in front of the replicas: round robin over
keep-alive upstream connections, run as an unprivileged master in a folder of its own."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

NGINX = shutil.which("nginx") or ("/usr/sbin/nginx" if Path("/usr/sbin/nginx").exists()
                                  else None)

CONFIG = """\
{user}worker_processes 1;
daemon off;
pid {folder}/nginx.pid;
error_log {folder}/error.log warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
    client_body_temp_path {folder}/body;
    proxy_temp_path {folder}/proxy;
    fastcgi_temp_path {folder}/fastcgi;
    uwsgi_temp_path {folder}/uwsgi;
    scgi_temp_path {folder}/scgi;
    client_max_body_size 8m;
    upstream replicas {{
        # round robin, as a Kubernetes Service spreads connections
{servers}
        keepalive 32;
    }}
    server {{
        listen 127.0.0.1:{port};
        location / {{
            proxy_pass http://replicas;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_set_header Host $host;
            proxy_connect_timeout 2s;
            proxy_read_timeout {read_timeout}s;
        }}
    }}
}}
"""


def start(folder: Path, port: int, upstreams: list[str], *,
          read_timeout: int = 30) -> subprocess.Popen[bytes]:
    """nginx on 127.0.0.1:`port` in front of `upstreams` (host:port each)."""
    assert NGINX is not None
    folder.mkdir(parents=True, exist_ok=True)
    servers = "\n".join(f"        server {address};" for address in upstreams)
    config = folder / "nginx.conf"
    # run as root (CI), the workers stay root: they write nothing outside `folder`
    user = "user root;\n" if os.geteuid() == 0 else ""
    config.write_text(CONFIG.format(user=user, folder=folder, port=port, servers=servers,
                                    read_timeout=read_timeout))
    return subprocess.Popen([NGINX, "-p", str(folder), "-c", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
