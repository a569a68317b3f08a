"""Dify's own SDKs, installed from the registries (PyPI and npm ``dify-client``, latest published),
run unchanged against a live Sluice in both modes (service-api §11 30).

Each SDK runs in its own process from a throwaway directory; the script prints one JSON object of
what it saw and the test checks it. PyPI's latest ``dify-client`` (0.1.10) has no workflow
client: its workflow calls go through the SDK's own request method (``_send_request``), exactly as
an application on that release does.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest
from tests.engine.test_document_node import make_pdf
from tests.service_api.conftest import FIXTURES, SHARED_FIXTURES, Keys, app_key
from tests.support.servers import LiveServer

PY_SCRIPT = textwrap.dedent(
    """
    import json, sys
    from dify_client import ChatClient, DifyClient

    base, wf_key, chat_key, pdf_path = sys.argv[1:5]
    out = {}
    wf = DifyClient(wf_key)
    wf.base_url = base
    r = wf.get_application_parameters("sdk-user")
    out["parameters"] = [r.status_code, r.json()]
    r = wf._send_request("GET", "/info")
    out["info"] = [r.status_code, r.json()]
    with open(pdf_path, "rb") as fh:
        r = wf.file_upload("sdk-user", {"file": ("hello.pdf", fh, "application/pdf")})
    out["upload"] = [r.status_code, r.json()]
    body = {"inputs": {"query": "sdk"}, "response_mode": "blocking", "user": "sdk-user"}
    r = wf._send_request("POST", "/workflows/run", body)
    out["run_blocking"] = [r.status_code, r.json()]
    run_id = r.json()["workflow_run_id"]
    r = wf._send_request("GET", f"/workflows/run/{run_id}")
    out["detail"] = [r.status_code, r.json()]
    body["response_mode"] = "streaming"
    r = wf._send_request("POST", "/workflows/run", body, stream=True)
    events = [json.loads(l[6:]) for l in r.iter_lines(decode_unicode=True) if l and l.startswith("data: ")]
    out["run_streaming"] = [r.status_code, [e["event"] for e in events], events[-1]]
    r = wf._send_request("POST", f"/workflows/tasks/{events[0]['task_id']}/stop", {"user": "sdk-user"})
    out["stop"] = [r.status_code, r.json()]

    chat = ChatClient(chat_key)
    chat.base_url = base
    r = chat.create_chat_message({"topic": "sdk"}, "hi from the sdk", "sdk-user")
    out["chat_blocking"] = [r.status_code, r.json()]
    conversation = r.json()["conversation_id"]
    r = chat.create_chat_message(
        {}, "and again", "sdk-user", response_mode="streaming", conversation_id=conversation
    )
    events = [json.loads(l[6:]) for l in r.iter_lines(decode_unicode=True) if l and l.startswith("data: ")]
    out["chat_streaming"] = [r.status_code, [e["event"] for e in events],
                             "".join(e.get("answer", "") for e in events if e["event"] == "message")]
    r = chat.get_conversations("sdk-user")
    out["conversations"] = [r.status_code, r.json()]
    r = chat.get_conversation_messages("sdk-user", conversation_id=conversation)
    out["messages"] = [r.status_code, r.json()]
    r = chat.rename_conversation(conversation, "Renamed by SDK", "sdk-user")
    out["rename"] = [r.status_code, r.json()]
    message_id = out["messages"][1]["data"][0]["id"]
    r = chat.message_feedback(message_id, "like", "sdk-user")
    out["feedback"] = [r.status_code, r.json()]
    print(json.dumps(out))
    """
)

JS_SCRIPT = textwrap.dedent(
    """
    import { ChatClient, CompletionClient, DifyClient } from "dify-client";
    import fs from "node:fs";

    const [base, wfKey, chatKey, pdfPath] = process.argv.slice(2);
    const out = {};
    const events = async (stream) => {
      let text = "";
      for await (const chunk of stream) text += chunk.toString();
      return text.split("\\n").filter((l) => l.startsWith("data: ")).map((l) => JSON.parse(l.slice(6)));
    };
    const wf = new CompletionClient(wfKey, base);
    let r = await wf.getApplicationParameters("sdk-js");
    out.parameters = [r.status, r.data];
    const form = new FormData();
    form.append("file", new Blob([fs.readFileSync(pdfPath)], { type: "application/pdf" }), "hello.pdf");
    form.append("user", "sdk-js");
    r = await wf.fileUpload(form);
    out.upload = [r.status, r.data];
    r = await wf.runWorkflow({ query: "js" }, "sdk-js");
    out.run_blocking = [r.status, r.data];
    r = await wf.sendRequest("GET", `/workflows/run/${r.data.workflow_run_id}`);
    out.detail = [r.status, r.data];
    r = await wf.runWorkflow({ query: "js" }, "sdk-js", true);
    const wfEvents = await events(r.data);
    out.run_streaming = [r.status, wfEvents.map((e) => e.event), wfEvents.at(-1)];
    r = await wf.sendRequest("POST", `/workflows/tasks/${wfEvents[0].task_id}/stop`, { user: "sdk-js" });
    out.stop = [r.status, r.data];

    const chat = new ChatClient(chatKey, base);
    r = await chat.createChatMessage({ topic: "js" }, "hi from js", "sdk-js");
    out.chat_blocking = [r.status, r.data];
    const conversation = r.data.conversation_id;
    r = await chat.createChatMessage({}, "and again", "sdk-js", true, conversation);
    const chatEvents = await events(r.data);
    out.chat_streaming = [r.status, chatEvents.map((e) => e.event),
      chatEvents.filter((e) => e.event === "message").map((e) => e.answer).join("")];
    r = await chat.getConversations("sdk-js");
    out.conversations = [r.status, r.data];
    r = await chat.getConversationMessages("sdk-js", conversation);
    out.messages = [r.status, r.data];
    r = await chat.renameConversation(conversation, "Renamed by SDK", "sdk-js");
    out.rename = [r.status, r.data];
    r = await chat.messageFeedback(out.messages[1].data[0].id, "like", "sdk-js");
    out.feedback = [r.status, r.data];
    r = await chat.deleteConversation(conversation, "sdk-js");
    out.delete = [r.status];
    console.log(JSON.stringify(out));
    """
)


@pytest.fixture(scope="session")
def python_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    target = tmp_path_factory.mktemp("dify-client-py")
    uv = shutil.which("uv")
    assert uv, "uv is needed to install the SDK"
    cmd = [uv, "pip", "install", "--python", sys.executable, "--target", str(target), "dify-client"]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture(scope="session")
def node_sdk(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prefix = tmp_path_factory.mktemp("dify-client-js")
    npm = shutil.which("npm")
    assert npm, "npm is needed to install the SDK"
    done = subprocess.run(
        [npm, "install", "--prefix", str(prefix), "--no-audit", "--no-fund", "dify-client@latest"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr
    return prefix


@pytest.fixture(scope="module")
def apps(svc: LiveServer, tmp_path_factory: pytest.TempPathFactory) -> tuple[Keys, Keys, Path]:
    pdf = tmp_path_factory.mktemp("sdk-files") / "hello.pdf"
    pdf.write_bytes(make_pdf("Hello SDK"))
    return app_key(svc, SHARED_FIXTURES / "app_a.yml"), app_key(svc, FIXTURES / "chat_vars.yml"), pdf


def check(out: dict[str, Any], user: str, *, chat_answer: str) -> None:
    status, params = out["parameters"]
    assert status == 200 and params["user_input_form"][0]["paragraph"]["variable"] == "query"
    status, upload = out["upload"]
    assert status == 201 and (upload["name"], upload["extension"], upload["mime_type"]) == (
        "hello.pdf",
        "pdf",
        "application/pdf",
    )
    status, run = out["run_blocking"]
    assert (
        status == 200
        and run["data"]["status"] == "succeeded"
        and run["data"]["outputs"]["text"].startswith("You said")
    )
    status, detail = out["detail"]
    assert (
        status == 200
        and detail["id"] == run["workflow_run_id"]
        and json.loads(detail["inputs"])["sys.user_id"] == user
    )
    status, names, last = out["run_streaming"]
    assert status == 200 and names[0] == "workflow_started" and last["event"] == "workflow_finished"
    assert out["stop"] == [200, {"result": "success"}]
    status, chat = out["chat_blocking"]
    assert status == 200 and chat["answer"] == f"topic={chat_answer} prev=; n=1 count=1"
    status, names, answer = out["chat_streaming"]
    assert status == 200 and names[-1] == "message_end" and "message" in names
    assert answer.startswith(f"topic={chat_answer} prev=hi from ")
    status, conversations = out["conversations"]
    assert status == 200 and conversations["data"][0]["id"] == chat["conversation_id"]
    status, messages = out["messages"]
    assert status == 200 and messages["data"][0]["answer"] == chat["answer"]
    status, renamed = out["rename"]
    assert status == 200 and renamed["name"] == "Renamed by SDK"
    assert out["feedback"] == [200, {"result": "success"}]


def test_python_dify_client(
    svc: LiveServer, python_sdk: Path, apps: tuple[Keys, Keys, Path], tmp_path: Path
) -> None:
    wf, chat, pdf = apps
    script = tmp_path / "sdk.py"
    script.write_text(PY_SCRIPT)
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(python_sdk), "NO_PROXY": "*"}
    done = subprocess.run(
        [sys.executable, str(script), svc.base_url + "/v1", wf.key, chat.key, str(pdf)],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert done.returncode == 0, done.stderr
    check(json.loads(done.stdout.strip().splitlines()[-1]), "sdk-user", chat_answer="sdk")


def test_node_dify_client(svc: LiveServer, node_sdk: Path, apps: tuple[Keys, Keys, Path]) -> None:
    wf, chat, pdf = apps
    script = node_sdk / "sdk.mjs"  # next to node_modules, so `import "dify-client"` resolves
    script.write_text(JS_SCRIPT)
    done = subprocess.run(
        ["node", str(script), svc.base_url + "/v1", wf.key, chat.key, str(pdf)],
        capture_output=True,
        text=True,
        timeout=300,
        env={"PATH": "/usr/bin:/bin", "NO_PROXY": "*"},
    )
    assert done.returncode == 0, done.stderr
    out = json.loads(done.stdout.strip().splitlines()[-1])
    check(out, "sdk-js", chat_answer="js")
    assert out["delete"] == [204]
