"""One model answers one qualitative suite: the answers JSONL (one record per task).

A model of the registry answers locally with transformers: through its chat template, or, when
its tokenizer has none (a pretraining checkpoint), a plain prompt (the conversation's messages
joined by blank lines). An endpoint model answers through OpenAI-compatible chat completions
(zflow.endpoint; the API key only from the environment). Decoding settings come from the spec.

Each record is zflow.qualitative.answer_task's record plus ``model``, ``suite``, ``category``,
``visible`` (the answer without reasoning blocks: what is flagged and scored), ``reasoning``,
``tokens_per_s``, ``flags`` and ``run`` (decoding settings, prompt format, package versions).
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from zflow.endpoint import chat
from zflow.io import spec_cli, versions, write_text
from zflow.qualitative import answer_task, flags, load_suite, split_reasoning


def plain_prompt(messages: list[dict]) -> str:
    """A base model's prompt: the conversation's messages (no system message), blank-line joined."""
    return "\n\n".join(m["content"] for m in messages if m["role"] != "system") + "\n\n"


def load_local(spec: dict, threads: int):
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(threads)
    device = spec["device"]
    if device == "auto":
        device = "cuda" if torch.cuda.is_available() else "cpu"
    dtype = "auto" if spec["dtype"] == "auto" else getattr(torch, spec["dtype"])
    path = spec["source"]["path"]
    tok = AutoTokenizer.from_pretrained(path)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype).to(device).eval()
    return model, tok, device


def eos_ids(model, tok) -> set[int]:
    ids = model.generation_config.eos_token_id
    ids = set(ids if isinstance(ids, list) else [ids] if ids is not None else [])
    return ids | ({tok.eos_token_id} if tok.eos_token_id is not None else set())


def local_sender(model, tok, device: str, decoding: dict):
    """send(messages) -> chat result, generating with transformers (timed, tokens counted)."""
    import torch
    from transformers import GenerationConfig

    chat_format = bool(tok.chat_template)
    stop = eos_ids(model, tok)
    sample = decoding["temperature"] > 0
    config = GenerationConfig(
        max_new_tokens=decoding["max_new_tokens"], do_sample=sample,
        temperature=decoding["temperature"] if sample else None,
        top_p=decoding["top_p"] if sample else None, top_k=0 if sample else None,
        repetition_penalty=decoding["repetition_penalty"], eos_token_id=sorted(stop) or None,
        pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else min(stop, default=0))

    def send(messages: list[dict]) -> dict:
        if chat_format:
            text = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
            ids = tok(text, add_special_tokens=False, return_tensors="pt")
        else:
            ids = tok(plain_prompt(messages), return_tensors="pt")
        ids = {k: v.to(device) for k, v in ids.items() if k in ("input_ids", "attention_mask")}
        torch.manual_seed(decoding["seed"])
        start = time.perf_counter()
        with torch.inference_mode():
            out = model.generate(**ids, generation_config=config)
        latency = time.perf_counter() - start
        new = out[0, ids["input_ids"].shape[1]:].tolist()
        end = next((i for i, t in enumerate(new) if t in stop), None)
        generated = new if end is None else new[:end + 1]
        text = tok.decode(new if end is None else new[:end], skip_special_tokens=True)
        return {"text": text, "tokens_generated": len(generated), "latency_s": round(latency, 4),
                "tokens_per_s": round(len(generated) / latency, 2) if latency > 0 else None,
                "finish_reason": "stop" if end is not None else "length",
                "truncated": end is None}

    return send, "chat" if chat_format else "plain"


def endpoint_sender(spec: dict):
    src, d = spec["source"], spec["decoding"]
    rp = d["repetition_penalty"]
    extra = {} if rp == 1.0 else {"repetition_penalty": rp}

    def send(messages: list[dict]) -> dict:
        r = chat(src["url"], src["model"], messages, max_tokens=d["max_new_tokens"],
                 temperature=d["temperature"], top_p=d["top_p"], seed=d["seed"],
                 timeout=spec["timeout_s"], retries=spec["request_retries"],
                 api_key_env=src["api_key_env"], extra=extra)
        tokens, latency = r.get("tokens_generated"), r.get("latency_s")
        r["tokens_per_s"] = round(tokens / latency, 2) if tokens and latency else None
        return r

    return send, "chat"


def run_info(spec: dict, prompt_format: str, device: str | None) -> dict:
    src = spec["source"]
    where = {"url": src["url"], "endpoint_model": src["model"]} if src["kind"] == "endpoint" \
        else {"path": src["path"], "device": device, "dtype": spec["dtype"]}
    return {"source": src["kind"], **where, "prompt_format": prompt_format,
            "decoding": {**spec["decoding"], "top_k": "off"}, "versions": versions()}


def record(task, answer: dict, spec: dict, run: dict) -> dict:
    tags = tuple(spec["decoding"]["reasoning_tags"])
    visible, reasoning, _ = split_reasoning(answer["answer"], tags)
    last = answer["replies"][-1]
    return {"model": spec["model"], "suite": spec["suite"], **answer, "category": task.category,
            "visible": visible, "reasoning": reasoning, "tokens_per_s": last.get("tokens_per_s"),
            "flags": flags(answer, task, spec["decoding"]), "run": run}


def main(argv=None) -> None:
    spec, args = spec_cli(__doc__, argv)
    tasks = load_suite(spec["suite_file"])
    device = None
    if spec["source"]["kind"] == "endpoint":
        send, prompt_format = endpoint_sender(spec)
    else:
        model, tok, device = load_local(spec, args.threads)
        send, prompt_format = local_sender(model, tok, device, spec["decoding"])
    run = run_info(spec, prompt_format, device)
    d = spec["decoding"]
    system = d["system"] if prompt_format == "chat" else None
    lines = []
    for task in tasks:
        answer = answer_task(task, send, system, tuple(d["reasoning_tags"]))
        rec = record(task, answer, spec, run)
        print(f"{task.id}: {rec['tokens_generated']} tokens in {rec['latency_s']} s, "
              f"flags {[k for k, v in rec['flags'].items() if v is True]}", flush=True)
        lines.append(json.dumps(rec, ensure_ascii=False))
    write_text(Path(spec["output"]), "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
