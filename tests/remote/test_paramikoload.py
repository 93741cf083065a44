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


def test_other_questions_to_the_stand_in_get_the_real_module(tmp_path):
    """A paramiko that asks `importlib.metadata` for more than its version still works."""
    fake = tmp_path / "paramiko"
    fake.mkdir()
    (fake / "__init__.py").write_text(
        "from importlib.metadata import entry_points, version\n"
        "__version__ = version('paramiko')\n"
        "OTHER = version('msgpack')\n")
    (tmp_path / "paramiko-9.9.1.dist-info").mkdir()
    code = ("import json, sys\n"
            f"sys.path.insert(0, {str(tmp_path)!r})\n"
            "from paxoslog.remote.paramikoload import paramiko\n"
            "import importlib.metadata as md\n"
            "print(json.dumps({'file': paramiko.__file__, 'version': paramiko.__version__,\n"
            "                  'other': paramiko.OTHER, 'real_other': md.version('msgpack'),\n"
            "                  'ep': paramiko.entry_points is md.entry_points}))\n")
    out = _fresh(code)
    assert out["file"].startswith(str(tmp_path))
    assert out["version"] == "9.9.1"
    assert out["other"] == out["real_other"] and out["ep"] is True
