"""paramiko loaded without `importlib.metadata` (issue 9: `status css` start-up): the banner
still carries paramiko's real version, and the real `importlib.metadata` works afterwards."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _fresh(code: str) -> dict:
    p = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=ROOT,
                       timeout=60)
    assert p.returncode == 0, p.stderr
    return json.loads(p.stdout)


def test_status_css_modules_do_not_import_importlib_metadata():
    out = _fresh(
        "import json, sys\n"
        "sys.modules['invoke'] = None  # as runtime.status_css does without ssh-config hosts\n"
        "import paxoslog.app.cssrun, paxoslog.remote.agentcall, paxoslog.remote.ssh\n"
        "import paramiko\n"
        "light = [m for m in ('importlib.metadata', 'secrets') if m in sys.modules]\n"
        "from paramiko.transport import Transport\n"
        "client_id = Transport._CLIENT_ID\n"
        "import importlib.metadata\n"
        "print(json.dumps({'light': light, 'version': paramiko.__version__,\n"
        "                  'client_id': client_id,\n"
        "                  'real': importlib.metadata.version('paramiko'),\n"
        "                  'ours': importlib.metadata.version('paxoslog'),\n"
        "                  'full': hasattr(importlib.metadata, 'distribution')}))\n")
    assert out["light"] == []
    assert out["version"] == out["real"] and out["client_id"] == f"paramiko_{out['real']}"
    assert out["ours"] and out["full"] is True


def test_with_invoke_the_stand_in_answers_other_packages_from_the_real_module():
    out = _fresh(
        "import json, sys\n"
        "from paxoslog.remote.paramikoload import paramiko\n"
        "import importlib.metadata, invoke\n"
        "print(json.dumps({'version': paramiko.__version__,\n"
        "                  'real': importlib.metadata.version('paramiko'),\n"
        "                  'invoke': invoke.__version__,\n"
        "                  'invoke_real': importlib.metadata.version('invoke'),\n"
        "                  'full': hasattr(importlib.metadata, 'distribution')}))\n")
    assert out["version"] == out["real"]
    assert out["invoke"] == out["invoke_real"] and out["full"] is True
