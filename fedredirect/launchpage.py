"""The simulated member's launch page, ``/v2/<provider>/<spec>``: BinderHub's page reduced
to what a launch needs. It carries a build token in ``window.pageConfig.buildToken`` and
launches through ``/build/`` on the origin it was served from, showing each event, and where
the launch ended: a link to the user server, or why it failed.
"""

from __future__ import annotations

import html
import json


def render_launch_page(spec: str, build_path: str, member: str, build_token: str) -> str:
    """The page launching ``spec`` through ``build_path`` (still percent-encoded), served
    by ``member`` with ``build_token``."""
    config = {"baseUrl": "/", "buildToken": build_token}
    return _LAUNCH_PAGE.format(
        page_config=_script_json(config),
        spec=html.escape(spec),
        build=html.escape(build_path, quote=True),
        member=html.escape(member),
    )


def _script_json(value: object) -> str:
    """JSON that cannot end the <script> element it is written in."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")


# Self-contained: no external assets, so it works on a machine without network. The
# launch reads the stream with fetch (as BinderHub's own client does), so an error answer
# from the router (a 503 when nobody can take launches) shows with its status.
_LAUNCH_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>Launching {spec}</title>
<script>
window.pageConfig = {page_config};
</script>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em auto; max-width: 48em; }}
li {{ margin: 0.2em 0; }} .phase {{ font-weight: bold; }}
#result[data-phase=ready] {{ color: #1a7f37; }} #result[data-phase=failed] {{ color: #b3261e; }}
</style>
</head>
<body>
<main id="launch" data-build="{build}" data-home="{member}">
<h1>Launching <code>{spec}</code></h1>
<p>This page comes from member <strong>{member}</strong>. The launch asks
<code>{build}</code> on this page's own site: behind the federation's router that is
answered with a redirect to a member, and the events below come from that member.</p>
<ol id="phases"></ol>
<p id="result" data-phase="">Connecting...</p>
</main>
<script>
(async () => {{
  const main = document.getElementById("launch");
  const phases = document.getElementById("phases");
  const result = document.getElementById("result");
  const finish = (phase, text) => {{ result.dataset.phase = phase; result.textContent = text; }};
  const show = (event) => {{
    const item = document.createElement("li");
    const name = document.createElement("span");
    name.className = "phase";
    name.textContent = event.phase;
    item.dataset.phase = event.phase;
    item.append(name, " " + (event.message || "").trim());
    phases.append(item);
  }};
  // As BinderHub's page does: the build token goes along as ?build_token=.
  const build = new URL(main.dataset.build, location.href);
  const token = (window.pageConfig || {{}}).buildToken;
  if (token) build.searchParams.set("build_token", token);
  let response;
  try {{
    response = await fetch(build, {{ headers: {{ accept: "text/event-stream" }} }});
  }} catch (err) {{
    finish("failed", "The launch got no answer: " + err);
    return;
  }}
  if (!response.ok) {{
    finish("failed", "Answered " + response.status + ": " + (await response.text()));
    return;
  }}
  const origin = new URL(response.url).origin;
  const member = response.headers.get("x-fedredirect-member") || origin;
  result.dataset.member = member;
  result.textContent = "Launching on member " + member + " (" + origin + ")...";
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = "";
  for (;;) {{
    const {{ value, done }} = await reader.read();
    if (done) break;
    buffer += value.replace(/\\r\\n?/g, "\\n");
    let end;
    while ((end = buffer.indexOf("\\n\\n")) >= 0) {{
      const lines = buffer.slice(0, end).split("\\n");
      buffer = buffer.slice(end + 2);
      const data = lines.filter((l) => l.startsWith("data:")).map((l) => l.slice(5)).join("\\n");
      if (!data.trim()) continue;
      const event = JSON.parse(data);
      show(event);
      if (event.phase === "ready") {{
        reader.cancel();
        finish("ready", "Ready on member " + member + ": ");
        result.dataset.url = event.url;
        const link = document.createElement("a");
        link.href = event.url + "?token=" + encodeURIComponent(event.token);
        link.textContent = event.url;
        result.append(link);
        return;
      }}
      if (event.phase === "failed") {{
        reader.cancel();
        finish("failed", "The launch failed on member " + member + ".");
        return;
      }}
    }}
  }}
  finish("failed", "The event stream ended before the launch was ready.");
}})();
</script>
</body>
</html>
"""
