# Loads LoraLego's exports (bench/peft-check/write-exports.ps1 wrote them to devcheck/) with transformers and PEFT:
# the baked model's logits against the fixture's golden ones, and every adapter without warnings.
import contextlib, io, logging, warnings
import torch
from transformers import AutoModelForCausalLM
from peft import PeftModel
from safetensors.torch import load_file

g = load_file('tests/fixtures/peft-tiny-llama/golden_logits.safetensors')
ids = g['input_ids']
baked = AutoModelForCausalLM.from_pretrained('devcheck/baked', dtype=torch.float32).eval()
with torch.no_grad():
    out = baked(ids).logits
print('Export-BaseModel (base + a merged) vs transformers+PEFT golden adapter/a: max abs diff', (out - g['adapter/a']).abs().max().item())
for name in ['lego', 'ties', 'resized']:
    base = AutoModelForCausalLM.from_pretrained('tests/fixtures/peft-tiny-llama/base', dtype=torch.float32).eval()
    buf = io.StringIO()
    handler = logging.StreamHandler(buf)
    logging.getLogger().addHandler(handler)
    with warnings.catch_warnings(record=True) as caught, contextlib.redirect_stderr(buf), contextlib.redirect_stdout(buf):
        warnings.simplefilter('always')
        model = PeftModel.from_pretrained(base, f'devcheck/{name}')
    logging.getLogger().removeHandler(handler)
    texts = [str(w.message) for w in caught] + [buf.getvalue()]
    flagged = [t for t in texts if 'nexpected' in t or 'loralego' in t]
    with torch.no_grad():
        logits = model(ids).logits
    layer0 = model.base_model.model.model.layers[0].self_attn
    print(f'{name}: PEFT loaded it; warnings {len(caught)}, about unknown keys/loralego: {flagged}; logits finite {torch.isfinite(logits).all().item()}; '
          f'k_proj rank {layer0.k_proj.lora_A["default"].weight.shape[0]} scaling {layer0.k_proj.scaling["default"]}')
