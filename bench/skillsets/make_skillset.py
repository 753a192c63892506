#!/usr/bin/env python3
"""Build one "skill set": a tiny multi-task LoRA merge benchmark.

A skill set is a tiny LlamaForCausalLM pre-trained on Markov-chain text over the set's digit
tokens plus a generic copy task (so it knows token statistics and copying but none of the skills),
one LoRA adapter per skill trained on answer-only loss, eval/train rows for each skill, and the
scores of the base, of each adapter on every skill and of PEFT's add_weighted_adapter merges.

Row shape: [task] x1..xL [SEP] y1..yL with labels -100 on the prompt and equal to input_ids on
the answer.

Usage:
    python3 make_skillset.py --preset disjoint --root /tmp/skillsets
    python3 make_skillset.py --spec my_spec.json --root /tmp/skillsets
    python3 make_skillset.py --list
"""
import argparse
import json
import math
import os
import platform
import shutil
import sys
import time

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

TARGETS = ["q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj"]

# ---------------------------------------------------------------------------------------------
# Set specifications. "digits" is the inclusive token range of the base's Markov text and copy
# task; each skill draws its x from its own inclusive range [lo, hi] (a sub-range of digits).
# ---------------------------------------------------------------------------------------------
PRESETS = {
    # Same four operations as skillbench, but each skill lives on its own 8-token range, so the
    # adapters see (and write) disjoint sets of token directions.
    "disjoint": {
        "name": "disjoint", "seed": 1101, "digits": [4, 35], "sep": 1, "copy_token": 44,
        "length": 8, "rank": 8, "alpha": 16,
        "skills": [
            {"name": "swap", "task": 40, "lo": 4, "hi": 11, "op": "swap"},
            {"name": "complement", "task": 41, "lo": 12, "hi": 19, "op": "complement"},
            {"name": "increment", "task": 42, "lo": 20, "hi": 27, "op": "add", "k": 1},
            {"name": "descend", "task": 43, "lo": 28, "hi": 35, "op": "descend"},
        ],
    },
    # Four other maps on one shared 24-token range, another vocabulary layout and seed.
    "shared2": {
        "name": "shared2", "seed": 2202, "digits": [8, 31], "sep": 1, "copy_token": 48,
        "length": 8, "rank": 8, "alpha": 16,
        "skills": [
            {"name": "reverse", "task": 44, "lo": 8, "hi": 31, "op": "reverse"},
            {"name": "rotate", "task": 45, "lo": 8, "hi": 31, "op": "rotl", "k": 1},
            {"name": "ascend", "task": 46, "lo": 8, "hi": 31, "op": "ascend"},
            {"name": "add2", "task": 47, "lo": 8, "hi": 31, "op": "add", "k": 2},
        ],
    },
    # shared2's skills and layout, another seed, adapters of different ranks and alphas
    # (scales alpha/r = 2, 2, 1, 4).
    "mixed-rank": {
        "name": "mixed-rank", "seed": 3303, "digits": [8, 31], "sep": 1, "copy_token": 48,
        "length": 8, "rank": 8, "alpha": 16,
        "skills": [
            {"name": "reverse", "task": 44, "lo": 8, "hi": 31, "op": "reverse", "rank": 4, "alpha": 8},
            {"name": "rotate", "task": 45, "lo": 8, "hi": 31, "op": "rotl", "k": 1, "rank": 8, "alpha": 16},
            {"name": "ascend", "task": 46, "lo": 8, "hi": 31, "op": "ascend", "rank": 16, "alpha": 16},
            {"name": "add2", "task": 47, "lo": 8, "hi": 31, "op": "add", "k": 2, "rank": 8, "alpha": 32},
        ],
    },
    # Three skills on partly overlapping 16-token ranges.
    "overlap3": {
        "name": "overlap3", "seed": 4404, "digits": [4, 35], "sep": 1, "copy_token": 44,
        "length": 8, "rank": 8, "alpha": 16,
        "skills": [
            {"name": "reverse", "task": 40, "lo": 4, "hi": 19, "op": "reverse"},
            {"name": "complement", "task": 41, "lo": 12, "hi": 27, "op": "complement"},
            {"name": "ascend", "task": 42, "lo": 20, "hi": 35, "op": "ascend"},
        ],
    },
}

OP_TEXT = {
    "swap": "swap adjacent pairs",
    "complement": "t -> lo + hi - t",
    "add": "t -> lo + (t - lo + k) mod (hi - lo + 1)",
    "descend": "sort descending",
    "ascend": "sort ascending",
    "reverse": "reverse the sequence",
    "rotl": "rotate left by k",
}

DEFAULT_TRAIN = {
    "pretrain_steps": 2500, "pretrain_min_steps": 1500, "pretrain_batch": 512, "pretrain_lr": 2e-3,
    "adapter_steps": 3000, "adapter_batch": 512, "adapter_lr": 3e-3, "check_every": 100,
    "eval_rows": 512, "train_rows": 2048, "markov_concentration": 0.3, "markov_pool": 100000,
}


def apply_op(op, x, lo, hi, k):
    n_range = hi - lo + 1
    if op == "swap":
        n, L = x.shape
        return x.reshape(n, L // 2, 2).flip(-1).reshape(n, L)
    if op == "complement":
        return lo + hi - x
    if op == "add":
        return lo + (x - lo + k) % n_range
    if op == "descend":
        return x.sort(dim=1, descending=True).values
    if op == "ascend":
        return x.sort(dim=1).values
    if op == "reverse":
        return x.flip(1)
    if op == "rotl":
        return x.roll(-k, dims=1)
    raise ValueError(f"unknown op {op}")


def skill_rows(spec, skill, n, gen, device):
    """n rows of one skill: (input_ids, labels), both LongTensor [n, 2L+2]."""
    L, sep = spec["length"], spec["sep"]
    x = torch.randint(skill["lo"], skill["hi"] + 1, (n, L), generator=gen, device=device)
    y = apply_op(skill["op"], x, skill["lo"], skill["hi"], skill.get("k", 1))
    col = lambda v: torch.full((n, 1), v, dtype=torch.long, device=device)
    ids = torch.cat([col(skill["task"]), x, col(sep), y], dim=1)
    labels = ids.clone()
    labels[:, : L + 2] = -100
    return ids, labels


def copy_rows(spec, n, gen, device):
    sk = {"task": spec["copy_token"], "lo": spec["digits"][0], "hi": spec["digits"][1], "op": "reverse"}
    L, sep = spec["length"], spec["sep"]
    x = torch.randint(sk["lo"], sk["hi"] + 1, (n, L), generator=gen, device=device)
    col = lambda v: torch.full((n, 1), v, dtype=torch.long, device=device)
    ids = torch.cat([col(sk["task"]), x, col(sep), x], dim=1)
    labels = ids.clone()
    labels[:, : L + 2] = -100
    return ids, labels


def x_hash(ids, L):
    """One int64 per row from its x tokens (6 bits a token; vocab is 64)."""
    h = torch.zeros(ids.shape[0], dtype=torch.long, device=ids.device)
    for j in range(1, L + 1):
        h = h * 64 + ids[:, j]
    return h


def answer_loss(logits, labels):
    lg = logits[:, :-1].float()
    tgt = labels[:, 1:]
    return F.cross_entropy(lg.reshape(-1, lg.shape[-1]), tgt.reshape(-1), ignore_index=-100)


@torch.no_grad()
def score(model, ids, labels):
    """(answer-token mean loss, teacher-forced exact-match) on rows."""
    model.eval()
    logits = model(input_ids=ids, use_cache=False).logits.float()
    lg = logits[:, :-1]
    tgt = labels[:, 1:]
    mask = tgt != -100
    loss = F.cross_entropy(lg.reshape(-1, lg.shape[-1]), tgt.reshape(-1), ignore_index=-100,
                           reduction="sum") / mask.sum()
    ok = ((lg.argmax(-1) == tgt) | ~mask).all(dim=1).float().mean()
    return float(loss), float(ok)


def write_jsonl(path, ids, labels):
    with open(path, "w") as f:
        for a, b in zip(ids.tolist(), labels.tolist()):
            f.write(json.dumps({"input_ids": a, "labels": b}) + "\n")


def make_base_config():
    from transformers import LlamaConfig
    return LlamaConfig(
        vocab_size=64, hidden_size=128, intermediate_size=256, num_hidden_layers=4,
        num_attention_heads=4, num_key_value_heads=2, head_dim=32, max_position_embeddings=64,
        tie_word_embeddings=False, rms_norm_eps=1e-6, bos_token_id=1, eos_token_id=2,
        pad_token_id=None, hidden_act="silu", initializer_range=0.02,
    )


def lr_at(step, total, peak, warmup, floor=0.1):
    if step < warmup:
        return peak * (step + 1) / warmup
    p = min(1.0, (step - warmup) / max(1, total - warmup))
    return peak * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


# ---------------------------------------------------------------------------------------------
# Pre-training the base
# ---------------------------------------------------------------------------------------------
def pretrain_base(spec, tr, base_dir, device, log):
    from transformers import LlamaForCausalLM
    seed = spec["seed"]
    torch.manual_seed(seed)
    model = LlamaForCausalLM(make_base_config()).to(device=device, dtype=torch.float32)
    lo, hi = spec["digits"]
    nd = hi - lo + 1
    rng = np.random.default_rng(seed)
    P = torch.tensor(rng.dirichlet([tr["markov_concentration"]] * nd, size=nd), dtype=torch.float32,
                     device=device)
    g = torch.Generator(device=device).manual_seed(seed + 1)
    T = 2 * spec["length"] + 2
    pool = torch.empty(tr["markov_pool"], T, dtype=torch.long, device=device)
    state = torch.randint(0, nd, (tr["markov_pool"],), generator=g, device=device)
    pool[:, 0] = state
    for t in range(1, T):
        state = torch.multinomial(P[state], 1, generator=g).squeeze(1)
        pool[:, t] = state
    pool += lo
    gc = torch.Generator(device="cpu").manual_seed(seed + 2)
    cid, clab = copy_rows(spec, 512, gc, "cpu")
    cid, clab = cid.to(device), clab.to(device)

    opt = torch.optim.AdamW(model.parameters(), lr=tr["pretrain_lr"], betas=(0.9, 0.98), weight_decay=0.01)
    half = tr["pretrain_batch"] // 2
    steps = tr["pretrain_steps"]
    t0 = time.time()
    for step in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, tr["pretrain_lr"], 100)
        idx = torch.randint(0, pool.shape[0], (half,), generator=g, device=device)
        mids = pool[idx]
        cids, clabs = copy_rows(spec, half, g, device)
        ids = torch.cat([mids, cids])
        labels = torch.cat([mids, clabs])
        model.train()
        loss = answer_loss(model(input_ids=ids, use_cache=False).logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        if step % 250 == 0 or step == steps - 1:
            cl, ca = score(model, cid, clab)
            log(f"pretrain step {step} loss {float(loss):.4f} copy ({cl:.4f}, {ca:.3f}) {time.time() - t0:.0f}s")
            if step >= tr["pretrain_min_steps"] and ca == 1.0 and cl < 0.005:
                log(f"pretrain early stop at step {step}")
                break
    model.eval()
    with torch.no_grad():
        lm = pool[:512]
        markov_loss = float(answer_loss(model(input_ids=lm, use_cache=False).logits, lm))
    copy_score = score(model, cid, clab)
    model.save_pretrained(base_dir)
    return {"copy_score": copy_score, "pretrain_loss": float(loss), "markov_loss": markov_loss,
            "pretrain_steps_run": step + 1}


# ---------------------------------------------------------------------------------------------
# Minimal LoRA fallback (used only where `import peft` fails). Writes PEFT's file layout.
# ---------------------------------------------------------------------------------------------
class LoraLinear(nn.Module):
    def __init__(self, base, r, alpha):
        super().__init__()
        self.base = base
        self.lora_A = nn.Linear(base.in_features, r, bias=False, device=base.weight.device)
        self.lora_B = nn.Linear(r, base.out_features, bias=False, device=base.weight.device)
        nn.init.kaiming_uniform_(self.lora_A.weight, a=math.sqrt(5))
        nn.init.zeros_(self.lora_B.weight)
        self.scaling = alpha / r

    def forward(self, x):
        return self.base(x) + self.lora_B(self.lora_A(x)) * self.scaling


def own_lora(model, r, alpha):
    for p in model.parameters():
        p.requires_grad_(False)
    wrapped = []
    for name, mod in list(model.named_modules()):
        for child_name, child in list(mod.named_children()):
            if child_name in TARGETS and isinstance(child, nn.Linear):
                setattr(mod, child_name, LoraLinear(child, r, alpha))
                wrapped.append(f"{name}.{child_name}")
    return wrapped


def own_lora_save(model, out_dir, r, alpha, base_path):
    from safetensors.torch import save_file
    os.makedirs(out_dir, exist_ok=True)
    sd = {}
    for name, mod in model.named_modules():
        if isinstance(mod, LoraLinear):
            sd[f"base_model.model.{name}.lora_A.weight"] = mod.lora_A.weight.detach().cpu().contiguous()
            sd[f"base_model.model.{name}.lora_B.weight"] = mod.lora_B.weight.detach().cpu().contiguous()
    save_file(sd, os.path.join(out_dir, "adapter_model.safetensors"), metadata={"format": "pt"})
    cfg = {"base_model_name_or_path": base_path, "bias": "none", "fan_in_fan_out": False,
           "inference_mode": True, "init_lora_weights": True, "lora_alpha": alpha, "lora_dropout": 0.0,
           "modules_to_save": None, "peft_type": "LORA", "r": r, "rank_pattern": {}, "alpha_pattern": {},
           "target_modules": TARGETS, "task_type": None, "use_dora": False, "use_rslora": False}
    with open(os.path.join(out_dir, "adapter_config.json"), "w") as f:
        json.dump(cfg, f, indent=2, sort_keys=True)


# ---------------------------------------------------------------------------------------------
# Adapter training
# ---------------------------------------------------------------------------------------------
def train_adapter(spec, tr, si, skill, base_dir, adapter_dir, eval_data, device, have_peft, log):
    from transformers import LlamaForCausalLM
    r = skill.get("rank", spec["rank"])
    alpha = skill.get("alpha", spec["alpha"])
    torch.manual_seed(spec["seed"] + 100 + si)
    base = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)
    if have_peft:
        from peft import LoraConfig, get_peft_model
        cfg = LoraConfig(r=r, lora_alpha=alpha, lora_dropout=0.0, bias="none", target_modules=list(TARGETS))
        model = get_peft_model(base, cfg)
    else:
        own_lora(base, r, alpha)
        model = base
    params = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    opt = torch.optim.AdamW([p for _, p in params], lr=tr["adapter_lr"], weight_decay=0.0)
    g = torch.Generator(device=device).manual_seed(spec["seed"] + 200 + si)
    eids, elab = eval_data
    eval_h = x_hash(eids, spec["length"])
    steps = tr["adapter_steps"]
    best = None
    t0 = time.time()
    step = 0
    for step in range(steps):
        for pg in opt.param_groups:
            pg["lr"] = lr_at(step, steps, tr["adapter_lr"], 50, floor=0.05)
        ids, labels = skill_rows(spec, skill, tr["adapter_batch"], g, device)
        keep = ~torch.isin(x_hash(ids, spec["length"]), eval_h)  # never train on an eval row
        ids, labels = ids[keep], labels[keep]
        model.train()
        loss = answer_loss(model(input_ids=ids, use_cache=False).logits, labels)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        if (step + 1) % tr["check_every"] == 0 or step == steps - 1:
            el, ea = score(model, eids, elab)
            if best is None or (ea, -el) > (best[1], -best[0]):
                best = (el, ea, step + 1, {n: p.detach().clone() for n, p in params})
            if (step + 1) % (tr["check_every"] * 5) == 0 or ea == 1.0:
                log(f"  {skill['name']} step {step + 1} loss {float(loss):.4f} eval ({el:.4f}, {ea:.4f}) {time.time() - t0:.0f}s")
            if ea == 1.0 and el < 0.01:
                break
    with torch.no_grad():
        for n, p in params:
            p.copy_(best[3][n])
    final = score(model, eids, elab)
    if have_peft:
        model.save_pretrained(adapter_dir)
        for extra in os.listdir(adapter_dir):  # keep PEFT's two files only (no model card)
            if extra not in ("adapter_config.json", "adapter_model.safetensors"):
                os.remove(os.path.join(adapter_dir, extra))
    else:
        own_lora_save(model, adapter_dir, r, alpha, base_dir)
    return {"score": final, "steps_run": step + 1, "best_step": best[2], "rank": r, "alpha": alpha,
            "seconds": round(time.time() - t0, 1)}


# ---------------------------------------------------------------------------------------------
# Scoring and PEFT merges
# ---------------------------------------------------------------------------------------------
def merge_specs(n):
    w1 = [1.0] * n
    wn = [1.0 / n] * n
    return {
        "linear": {"combination_type": "linear", "weights": wn},
        "linear_w1": {"combination_type": "linear", "weights": w1},
        "cat": {"combination_type": "cat", "weights": w1},
        "cat_avg": {"combination_type": "cat", "weights": wn},
        "svd_r8": {"combination_type": "svd", "weights": w1, "svd_rank": 8},
        "svd_r16": {"combination_type": "svd", "weights": w1, "svd_rank": 16},
        "ties": {"combination_type": "ties", "weights": w1, "density": 0.5},
        "ties_svd": {"combination_type": "ties_svd", "weights": w1, "density": 0.5},
    }


def score_all(spec, base_dir, adir, evals, device, have_peft, log):
    from transformers import LlamaForCausalLM
    names = [s["name"] for s in spec["skills"]]
    table, errors = {}, {}

    def row(model):
        return {n: [round(v, 4) for v in score(model, *evals[n])] for n in names}

    base = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)
    table["base"] = row(base)
    merges = merge_specs(len(names))
    if not have_peft:
        # own adapters, one at a time
        for si, n in enumerate(names):
            m = LlamaForCausalLM.from_pretrained(base_dir, dtype=torch.float32).to(device)
            from safetensors.torch import load_file
            cfg = json.load(open(os.path.join(adir[n], "adapter_config.json")))
            own_lora(m, cfg["r"], cfg["lora_alpha"])
            sd = load_file(os.path.join(adir[n], "adapter_model.safetensors"))
            msd = {}
            for k, v in sd.items():
                msd[k[len("base_model.model."):]] = v
            m.load_state_dict(msd, strict=False)
            table[f"adapter/{n}"] = row(m.to(device))
        return table, {}, errors
    from peft import PeftModel
    pm = PeftModel.from_pretrained(base, adir[names[0]], adapter_name=names[0])
    for n in names[1:]:
        pm.load_adapter(adir[n], adapter_name=n)
    pm.to(device)
    for n in names:
        pm.set_adapter(n)
        table[f"adapter/{n}"] = row(pm)
    for mname, ms in merges.items():
        kw = {k: v for k, v in ms.items() if k not in ("weights",)}
        try:
            pm.add_weighted_adapter(adapters=names, weights=ms["weights"], adapter_name=mname, **kw)
            pm.to(device)
            pm.set_adapter(mname)
            table[f"merge/{mname}"] = row(pm)
            pm.set_adapter(names[0])
            pm.delete_adapter(mname)
        except Exception as e:  # e.g. linear/ties on adapters of different ranks
            errors[f"merge/{mname}"] = f"{type(e).__name__}: {e}"
            log(f"merge {mname} failed: {errors[f'merge/{mname}']}")
            try:
                pm.set_adapter(names[0])
                if mname in pm.peft_config:
                    pm.delete_adapter(mname)
            except Exception:
                pass
    return table, merges, errors


def fmt_table(names, table, errors, merge_names):
    order = ["base"] + [f"adapter/{n}" for n in names]
    order += [f"merge/{m}" for m in merge_names if f"merge/{m}" in table or f"merge/{m}" in errors]
    w = max(len(k) for k in order)
    lines = []
    for k in order:
        if k in table:
            cells = " ".join(f"{n}:{table[k][n][0]:.3f}/{table[k][n][1]:.2f}" for n in names)
            mean_acc = sum(table[k][n][1] for n in names) / len(names)
            lines.append(f"{k:<{w}} {cells} mean_acc={mean_acc:.3f}")
        elif k in errors:
            lines.append(f"{k:<{w}} n/a ({errors[k].splitlines()[0][:160]})")
    return lines


def means(table, names, k):
    return (sum(table[k][n][0] for n in names) / len(names), sum(table[k][n][1] for n in names) / len(names))


def write_readme(path, spec, tr, info, versions, table, merges, errors, lines, cmd):
    names = [s["name"] for s in spec["skills"]]
    lo, hi = spec["digits"]
    out = []
    out.append(f"# {spec['name']}: a multi-task merge benchmark in miniature\n")
    out.append(f"Made by `bench/skillsets/make_skillset.py` with torch {versions['torch']}, transformers "
               f"{versions['transformers']} and peft {versions['peft']} on {versions['device']}; every merge "
               f"number in `peft_scores.txt` is PEFT's own `add_weighted_adapter`.\n")
    out.append("Same shape and conventions as `skillbench`; what differs is said below.\n")
    out.append(f"- `base/`: a tiny LlamaForCausalLM (vocab 64, hidden 128, intermediate 256, 4 layers, 4 heads, "
               f"2 key/value heads, head dim 32, untied head, 64 positions, float32) pre-trained from random init "
               f"(seed {spec['seed']}) on Markov-chain text over the digit tokens {lo}..{hi} (a random transition "
               f"matrix, each row Dirichlet({tr['markov_concentration']})) and on a generic copy task (task token "
               f"{spec['copy_token']}: `[{spec['copy_token']}] x [SEP] x`), half of each batch, "
               f"{info['base']['pretrain_steps_run']} steps. It knows the token statistics and how to copy but "
               f"none of the skills: their task tokens never occur in pre-training. Copy score (loss, exact-match): "
               f"{tuple(round(v, 4) for v in info['base']['copy_score'])}. The `base pretrain loss` line of "
               f"`peft_scores.txt` is the last pre-training batch's loss, Markov text and copy answers together, so "
               f"it cannot go below the chain's entropy (Markov-only loss on 512 pre-training rows: "
               f"{info['base']['markov_loss']:.3f}).")
    rk = [f"{n} r {info['adapters'][n]['rank']} alpha {info['adapters'][n]['alpha']}" for n in names]
    same_rank = len({(info['adapters'][n]['rank'], info['adapters'][n]['alpha']) for n in names}) == 1
    out.append(f"- `adapters/{{{','.join(names)}}}/`: {'PEFT' if versions['peft'] != 'absent' else 'PEFT-layout'} LoRA "
               f"adapters ({'r %d, alpha %d' % (info['adapters'][names[0]]['rank'], info['adapters'][names[0]]['alpha']) if same_rank else '; '.join(rk)}; "
               f"all seven linear modules q,k,v,o,gate,up,down; dropout 0), each trained on one skill with "
               f"answer-only loss on fresh rows from the skill's generator (rows whose x is in `eval/` are "
               f"dropped, so no eval row is trained on), AdamW lr {tr['adapter_lr']}, batch {tr['adapter_batch']}, "
               f"at most {tr['adapter_steps']} steps, stopping once eval exact-match is 1.0 and eval loss < 0.01 "
               f"(the checkpoint with the best eval exact-match is kept). Exact-match reached: "
               + "/".join(f"{info['adapters'][n]['score'][1]:.2f}" for n in names) + ".")
    out.append(f"- A row is `[task token] x1..x{spec['length']} [SEP={spec['sep']}] y1..y{spec['length']}`. Skills:")
    for s in spec["skills"]:
        k = f", k={s.get('k', 1)}" if s["op"] in ("add", "rotl") else ""
        out.append(f"  - `{s['name']}`: task token {s['task']}, x drawn uniformly from {s['lo']}..{s['hi']}, "
                   f"op `{s['op']}`{k} ({OP_TEXT[s['op']]}).")
    out.append(f"- `eval/<skill>.jsonl` ({tr['eval_rows']} rows each) and `train/<skill>.jsonl` ({tr['train_rows']} "
               f"rows each, none sharing x with eval): `{{\"input_ids\": [...], \"labels\": [...]}}`, labels -100 on "
               f"the prompt (task token, x, SEP) and equal to input_ids on the answer. Rows come from a CPU "
               f"torch.Generator seeded with seed+17+101*i (eval) and seed+7919+101*i (train), i the skill's index.")
    out.append("- Scores, per skill: the answer-token loss (mean next-token cross-entropy over positions whose label "
               "is not -100) and exact-match (every answer token is the model's arg-max, teacher-forced). "
               "`peft_scores.txt` has the base, each adapter on every skill, and PEFT `add_weighted_adapter` merges "
               "of all skills (" + ", ".join(
                   f"{m} = {ms['combination_type']} weights {ms['weights'][0]:.3g}"
                   + (f" svd_rank {ms['svd_rank']}" if 'svd_rank' in ms else "")
                   + (f" density {ms['density']}" if 'density' in ms else "") for m, ms in merges.items()) + ").")
    merged = [k for k in table if k.startswith("merge/")]
    if merged:
        best = max(merged, key=lambda k: (means(table, names, k)[1], -means(table, names, k)[0]))
        bl, ba = means(table, names, best)
        out.append(f"  PEFT's best merge here is {best[6:]}: mean loss {bl:.3f}, mean exact-match {ba:.3f}.")
    diag_l = sum(table[f"adapter/{n}"][n][0] for n in names) / len(names)
    diag_a = sum(table[f"adapter/{n}"][n][1] for n in names) / len(names)
    out.append(f"  Each adapter on its own skill: mean loss {diag_l:.3f}, exact-match {diag_a:.2f} — the ceiling "
               f"a mixture that routes each row to its skill's expert could reach.")
    if errors:
        out.append("  Merges PEFT refused: " + "; ".join(f"{k[6:]} ({v.splitlines()[0][:120]})" for k, v in errors.items()) + ".")
    out.append("\n## How it was made\n")
    out.append("```\n" + cmd + "\n```\n")
    out.append("Spec:\n\n```json\n" + json.dumps(spec, indent=1) + "\n```\n")
    out.append("Training settings:\n\n```json\n" + json.dumps(tr, indent=1) + "\n```\n")
    out.append("Adapter training (steps run, step kept, seconds):\n")
    for n in names:
        a = info["adapters"][n]
        out.append(f"- {n}: {a['steps_run']} steps, kept step {a['best_step']}, {a['seconds']} s, eval "
                   f"({a['score'][0]:.4f}, {a['score'][1]:.4f})")
    out.append("\n## peft_scores.txt\n\n```\n" + "\n".join(lines) + "\n```\n")
    with open(path, "w") as f:
        f.write("\n".join(out))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--preset", choices=sorted(PRESETS))
    ap.add_argument("--spec", help="JSON file with a set specification (see PRESETS)")
    ap.add_argument("--root", default="/tmp/skillsets", help="the set is written to ROOT/<name>")
    ap.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    ap.add_argument("--smoke", action="store_true", help="a few steps of everything, to test the code paths")
    ap.add_argument("--no-peft", action="store_true", help="use the built-in LoRA even where peft is present")
    ap.add_argument("--list", action="store_true")
    args = ap.parse_args()
    if args.list:
        print(json.dumps(PRESETS, indent=1))
        return
    if args.spec:
        spec = json.load(open(args.spec))
    elif args.preset:
        spec = json.loads(json.dumps(PRESETS[args.preset]))
    else:
        ap.error("give --preset or --spec")
    tr = dict(DEFAULT_TRAIN)
    tr.update(spec.pop("train", {}))
    if args.smoke:
        tr.update(pretrain_steps=30, pretrain_min_steps=0, adapter_steps=40, check_every=20, markov_pool=2000)
    device = args.device
    have_peft = False
    if not args.no_peft:
        try:
            import peft  # noqa: F401
            have_peft = True
        except Exception:
            have_peft = False
    import transformers
    versions = {"torch": torch.__version__.split("+")[0], "transformers": transformers.__version__,
                "peft": (__import__("peft").__version__ if have_peft else "absent"),
                "python": platform.python_version(),
                "device": torch.cuda.get_device_name(0) if device.startswith("cuda") else "cpu"}
    out_dir = os.path.join(args.root, spec["name"])
    if os.path.exists(out_dir):
        shutil.rmtree(out_dir)
    for d in ("base", "adapters", "eval", "train"):
        os.makedirs(os.path.join(out_dir, d), exist_ok=True)
    logf = open(os.path.join(args.root, spec["name"] + ".log"), "a")

    def log(msg):
        line = f"[{spec['name']}] {msg}"
        print(line, flush=True)
        logf.write(line + "\n")
        logf.flush()

    log(f"versions {versions} peft={have_peft}")
    names = [s["name"] for s in spec["skills"]]
    assert len(set(names)) == len(names)
    for s in spec["skills"]:
        assert spec["digits"][0] <= s["lo"] < s["hi"] <= spec["digits"][1], s
        assert s["task"] not in range(spec["digits"][0], spec["digits"][1] + 1) and s["task"] != spec["copy_token"]
        assert s["task"] < 64 and s["op"] in OP_TEXT

    # data
    evals, evals_dev = {}, {}
    L = spec["length"]
    for i, s in enumerate(spec["skills"]):
        ge = torch.Generator(device="cpu").manual_seed(spec["seed"] + 17 + 101 * i)
        eids, elab = skill_rows(spec, s, tr["eval_rows"], ge, "cpu")
        gt = torch.Generator(device="cpu").manual_seed(spec["seed"] + 7919 + 101 * i)
        tids, tlab = skill_rows(spec, s, 2 * tr["train_rows"], gt, "cpu")
        keep = ~torch.isin(x_hash(tids, L), x_hash(eids, L))
        tids, tlab = tids[keep][: tr["train_rows"]], tlab[keep][: tr["train_rows"]]
        assert tids.shape[0] == tr["train_rows"]
        write_jsonl(os.path.join(out_dir, "eval", s["name"] + ".jsonl"), eids, elab)
        write_jsonl(os.path.join(out_dir, "train", s["name"] + ".jsonl"), tids, tlab)
        evals[s["name"]] = (eids.to(device), elab.to(device))

    base_dir = os.path.join(out_dir, "base")
    t0 = time.time()
    info = {"base": pretrain_base(spec, tr, base_dir, device, log), "adapters": {}}
    log(f"base done {info['base']} {time.time() - t0:.0f}s")
    adir = {}
    for i, s in enumerate(spec["skills"]):
        adir[s["name"]] = os.path.join(out_dir, "adapters", s["name"])
        info["adapters"][s["name"]] = train_adapter(spec, tr, i, s, base_dir, adir[s["name"]],
                                                    evals[s["name"]], device, have_peft, log)
        log(f"{s['name']} trained {info['adapters'][s['name']]}")
    table, merges, errors = score_all(spec, base_dir, adir, evals, device, have_peft, log)
    lines = [f"base copy score {tuple(round(v, 4) for v in info['base']['copy_score'])}",
             f"base pretrain loss {info['base']['pretrain_loss']}"]
    for n in names:
        sc = info["adapters"][n]["score"]
        lines.append(f"{n} trained ({round(sc[0], 4)}, {round(sc[1], 4)})")
    lines += fmt_table(names, table, errors, list(merge_specs(len(names))))
    with open(os.path.join(out_dir, "peft_scores.txt"), "w") as f:
        f.write("\n".join(lines) + "\n")
    scores = {"table": table, "merges": merges,
              "note": "score = (answer-token loss, exact-match accuracy) on eval/<task>.jsonl",
              "errors": errors, "spec": spec, "train": tr, "training": info, "versions": versions}
    with open(os.path.join(out_dir, "scores.json"), "w") as f:
        json.dump(scores, f, indent=1)
    cmd = (f"python3 bench/skillsets/make_skillset.py --preset {spec['name']} --root /tmp/skillsets"
           if args.preset else f"python3 bench/skillsets/make_skillset.py --spec {args.spec} --root /tmp/skillsets")
    write_readme(os.path.join(out_dir, "README.md"), spec, tr, info, versions, table, merges, errors, lines, cmd)
    for l in lines:
        log(l)
    log(f"done in {time.time() - t0:.0f}s")


if __name__ == "__main__":
    main()
