"""The floor for a one-shot run: the same two requests and subprocess with bare httpx.

Usage: python benchmarks/floor.py BASE_URL "PROMPT"   (prints the final reply)
"""

import json
import subprocess
import sys

import httpx

base_url, prompt = sys.argv[1], sys.argv[2]
tools = [
    {
        "type": "function",
        "function": {
            "name": "system_run",
            "description": "Run a shell command.",
            "parameters": {
                "type": "object",
                "properties": {"command": {"type": "string"}},
                "required": ["command"],
            },
        },
    }
]
messages: list[dict] = [{"role": "user", "content": prompt}]
with httpx.Client(base_url=base_url, headers={"Authorization": "Bearer k"}) as client:
    body = {"model": "fake", "messages": messages, "tools": tools}
    first = client.post("/chat/completions", json=body).json()["choices"][0]["message"]
    messages.append(first)
    for call in first.get("tool_calls") or []:
        command = json.loads(call["function"]["arguments"])["command"]
        done = subprocess.run(["bash", "-c", command], capture_output=True, text=True)
        output = f"exit code: {done.returncode}\n{done.stdout}{done.stderr}"
        messages.append({"role": "tool", "tool_call_id": call["id"], "content": output})
    second = client.post("/chat/completions", json=body).json()["choices"][0]["message"]
print(second["content"])
