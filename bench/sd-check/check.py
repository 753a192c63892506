# Loads LoraLego's Stable Diffusion exports (bench/sd-check/write-exports.ps1 wrote them to sdcheck/) with diffusers'
# own kohya converter (Stable Diffusion(XL)Pipeline.lora_state_dict) where diffusers is installed, and compares
# every module's update dW = alpha / r * up @ down with the fixture's and with LoraLego's diffusers export.
# Run from the repository root: python bench/sd-check/check.py
import json
import torch
from safetensors import safe_open
from safetensors.torch import load_file

FIXTURES = 'tests/fixtures/sd'


def kohya_deltas(path):
    """dW per kohya name, straight from the file: alpha / r * up @ down, flattened for convolutions."""
    sd = load_file(path)
    out = {}
    for key in sd:
        if key.endswith('.lora_down.weight'):
            name = key[:-len('.lora_down.weight')]
            down, up = sd[key].float(), sd[name + '.lora_up.weight'].float()
            r = down.shape[0]
            alpha = sd[name + '.alpha'].double().item() if name + '.alpha' in sd else r
            out[name] = (up.flatten(1) @ down.flatten(1)) * (alpha / r)
    return out


def diffusers_file_deltas(path):
    """dW per module key from a diffusers file, with rank and alpha from its lora_adapter_metadata (diffusers' default alpha = r without it)."""
    sd = load_file(path)
    with safe_open(path, 'pt') as f:
        meta = f.metadata() or {}
    packed = json.loads(meta.get('lora_adapter_metadata', '{}'))
    out = {}
    for key in sd:
        if key.endswith('.lora_A.weight'):
            module = key[:-len('.lora_A.weight')]
            component, local = module.split('.', 1)
            a, b = sd[key].float(), sd[module + '.lora_B.weight'].float()
            r = a.shape[0]
            alpha = packed.get(f'{component}.alpha_pattern', {}).get(local, packed.get(f'{component}.lora_alpha', r))
            out[module] = (b.flatten(1) @ a.flatten(1)) * (alpha / r)
    return out


TE_PROJECTIONS = {'to_q': 'q_proj', 'to_k': 'k_proj', 'to_v': 'v_proj', 'to_out': 'out_proj'}


def module_of(key):
    """The module path of a converted key (a factor's or an alpha's), whichever of diffusers' LoRA key styles it is in."""
    key = key.removesuffix('.alpha')
    for suffix in ('.lora_A.weight', '.lora_B.weight', '.lora.down.weight', '.lora.up.weight',
                   '.lora_linear_layer.down.weight', '.lora_linear_layer.up.weight', '.lora_linear_layer', '.lora_A', '.lora.down'):
        if key.endswith(suffix):
            key = key[:-len(suffix)]
            break
    for old, new in TE_PROJECTIONS.items():
        if key.startswith('text_encoder') and key.endswith('.' + old + '_lora'):
            key = key[:-len(old + '_lora')] + new
    return key.removesuffix('.lora')


def converted_deltas(path, pipeline):
    """dW per module key after diffusers' own conversion of a kohya file."""
    state_dict, alphas = pipeline.lora_state_dict(load_file(path))[:2]
    alphas = {module_of(k): float(v) for k, v in (alphas or {}).items()}
    downs = {module_of(k): v for k, v in state_dict.items() if k.endswith(('.lora_A.weight', '.down.weight'))}
    ups = {module_of(k): v for k, v in state_dict.items() if k.endswith(('.lora_B.weight', '.up.weight'))}
    out = {}
    for module, down in downs.items():
        down, up = down.float(), ups[module].float()
        r = down.shape[0]
        out[module] = (up.flatten(1) @ down.flatten(1)) * (alphas.get(module, r) / r)
    return out


def compare(label, got, want):
    common = sorted(set(got) & set(want))
    missing, extra = sorted(set(want) - set(got)), sorted(set(got) - set(want))
    worst = max(((got[k] - want[k]).abs().max().item(), k) for k in common) if common else (float('nan'), None)
    print(f'{label}: {len(common)} modules compared, max abs dW difference {worst[0]:.3g} ({worst[1]}); '
          f'missing {missing[:3]}{"..." if len(missing) > 3 else ""}, unexpected {extra[:3]}{"..." if len(extra) > 3 else ""}')


# Format-independent: LoraLego's diffusers -> kohya conversion against the kohya fixture, by kohya name.
compare('LoraLego sdxl diffusers->kohya vs the kohya fixture', kohya_deltas('sdcheck/sdxl-from-diffusers.safetensors'), kohya_deltas(f'{FIXTURES}/sdxl-kohya.safetensors'))
compare('LoraLego sdxl kohya->diffusers vs the diffusers fixture', diffusers_file_deltas('sdcheck/sdxl-from-kohya/pytorch_lora_weights.safetensors'),
        diffusers_file_deltas(f'{FIXTURES}/sdxl-diffusers/pytorch_lora_weights.safetensors'))
try:
    import diffusers
    from diffusers import StableDiffusionPipeline, StableDiffusionXLPipeline
except ImportError as e:
    print(f'diffusers is not installed here ({e}); only the checks above ran')
else:
    print(f'diffusers {diffusers.__version__}')
    reference = diffusers_file_deltas(f'{FIXTURES}/sdxl-diffusers/pytorch_lora_weights.safetensors')
    compare("diffusers' converter on LoraLego's sdxl kohya export vs the diffusers fixture", converted_deltas('sdcheck/sdxl-from-diffusers.safetensors', StableDiffusionXLPipeline), reference)
    compare("diffusers' converter on the sdxl kohya fixture vs the diffusers fixture", converted_deltas(f'{FIXTURES}/sdxl-kohya.safetensors', StableDiffusionXLPipeline), reference)
    compare("diffusers' converter on LoraLego's sd15 merge (kohya) vs LoraLego's diffusers export of it", converted_deltas('sdcheck/sd15-merged.safetensors', StableDiffusionPipeline),
            diffusers_file_deltas('sdcheck/sd15-merged-diffusers/pytorch_lora_weights.safetensors'))
    state_dict = StableDiffusionXLPipeline.lora_state_dict('sdcheck/sdxl-from-kohya', weight_name='pytorch_lora_weights.safetensors')[0]
    print(f"diffusers' lora_state_dict read LoraLego's diffusers export: {len(state_dict)} tensors")
