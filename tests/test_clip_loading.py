"""CLIP weights: Hugging Face, OpenAI/open_clip and TorchScript layouts."""
import os

import pytest
import torch
from transformers import CLIPConfig, CLIPModel, CLIPVisionConfig, \
    CLIPVisionModel

from stadapter_mm import ViTCLIPSTAdapter
from stadapter_mm.checkpoints.clip_formats import (
    CheckpointError, backbone_to_openai, detect_layout, hf_to_backbone,
    load_checkpoint_file, openai_to_backbone)
from conftest import TINY_ARCH
from reference_clip import ReferenceCLIP


def _hf_vision(arch, seed=0):
    torch.manual_seed(seed)
    cfg = CLIPVisionConfig(
        hidden_size=arch['width'],
        intermediate_size=4 * arch['width'],
        num_hidden_layers=arch['layers'],
        num_attention_heads=arch['heads'],
        image_size=arch['input_resolution'],
        patch_size=arch['patch_size'],
        hidden_act='quick_gelu')
    model = CLIPVisionModel(cfg).eval()
    with torch.no_grad():  # perturb every weight so mappings are checked
        for p in model.parameters():
            p.add_(torch.randn_like(p) * 0.05)
    return model


def _load(path, arch=TINY_ARCH, **kwargs):
    model = ViTCLIPSTAdapter(
        arch=dict(arch) if isinstance(arch, dict) else arch,
        adapter=dict(width=16),
        init_cfg=dict(type='Pretrained', checkpoint=str(path)),
        **kwargs)
    model.init_weights()
    return model.eval()


def _assert_matches_hf(ours, hf, frames):
    """Per-frame features of our video model equal HF's image features."""
    n, c, t, h, w = frames.shape
    with torch.no_grad():
        tokens = ours.forward_features(frames)
        ref = hf(pixel_values=frames.transpose(1, 2).reshape(n * t, c, h, w))
    ref_tokens = ref.last_hidden_state.view(n, t, -1, tokens.shape[-1])
    assert (tokens - ref_tokens).abs().max() <= 1e-5
    per_frame = ours.ln_post(tokens[:, :, 0])
    assert (per_frame - ref.pooler_output.view(n, t, -1)).abs().max() <= 1e-5
    video = ours(frames)
    expect = ours.ln_post(ref_tokens[:, :, 0].mean(1))
    assert (video - expect).abs().max() <= 1e-5


@pytest.mark.parametrize('safe', [True, False])
def test_hf_clip_vision_model_equivalence(tmp_path, safe):
    hf = _hf_vision(TINY_ARCH)
    hf.save_pretrained(tmp_path)
    expected = 'model.safetensors' if safe else 'pytorch_model.bin'
    if not safe:  # transformers 5 writes only safetensors: make the .bin
        os.remove(tmp_path / 'model.safetensors')
        torch.save(hf.state_dict(), tmp_path / expected)
    assert os.path.isfile(tmp_path / expected)
    ours = _load(tmp_path)
    _assert_matches_hf(ours, hf, torch.randn(2, 3, 3, 32, 32))
    # Loading the weight file itself (not the folder) works the same.
    again = _load(tmp_path / expected)
    frozen = ours.frozen_state_keys()
    assert frozen and all(
        torch.equal(ours.state_dict()[k], again.state_dict()[k])
        for k in frozen)


def test_hf_full_clip_model_with_text_tower(tmp_path):
    torch.manual_seed(0)
    vision = dict(hidden_size=64, intermediate_size=256, num_hidden_layers=2,
                  num_attention_heads=4, image_size=32, patch_size=8)
    text = dict(hidden_size=32, intermediate_size=64, num_hidden_layers=1,
                num_attention_heads=2, vocab_size=100)
    clip = CLIPModel(CLIPConfig(vision_config=vision, text_config=text))
    clip.save_pretrained(tmp_path)
    sd = clip.state_dict()
    converted, ignored = hf_to_backbone(sd)
    assert any(k.startswith('text_model.') for k in ignored)
    assert 'visual_projection.weight' in ignored
    ours = _load(tmp_path)
    hf = clip.vision_model.eval()
    x = torch.randn(1, 3, 2, 32, 32)
    with torch.no_grad():
        ref = hf(pixel_values=x[:, :, 0]).pooler_output
        got = ours.ln_post(ours.forward_features(x)[:, 0, 0])
    assert (got - ref).abs().max() <= 1e-5


def test_hf_equivalence_at_full_vit_b16_size(tmp_path):
    arch = ViTCLIPSTAdapter.arch_zoo['ViT-B/16']
    hf = _hf_vision(arch)
    hf.save_pretrained(tmp_path)
    ours = _load(tmp_path, arch='ViT-B/16')
    _assert_matches_hf(ours, hf, torch.randn(1, 3, 1, 224, 224))


def _reference_clip(seed=0):
    torch.manual_seed(seed)
    return ReferenceCLIP(**TINY_ARCH).eval()


def test_openai_state_dict_with_and_without_prefix(tmp_path):
    ref = _reference_clip()
    full = ref.state_dict()
    torch.save(full, tmp_path / 'clip.pt')
    visual = ref.visual.state_dict()
    torch.save({'state_dict': visual}, tmp_path / 'visual.pth')
    x = torch.randn(2, 3, 1, 32, 32)
    with torch.no_grad():
        expect = ref.visual(x[:, :, 0])
    for name in ('clip.pt', 'visual.pth'):
        ours = _load(tmp_path / name)
        with torch.no_grad():
            got = ours(x)
        assert (got - expect).abs().max() <= 1e-5, name


def test_openai_layout_round_trip():
    ref = _reference_clip()
    converted, ignored = openai_to_backbone(ref.state_dict())
    assert set(ignored) == {'visual.proj', 'token_embedding.weight',
                            'logit_scale'}
    back = backbone_to_openai(converted)
    original = {k: v for k, v in ref.state_dict().items()
                if k.startswith('visual.') and k != 'visual.proj'}
    assert back.keys() == original.keys()
    assert all(torch.equal(back[k], original[k]) for k in original)
    model = ViTCLIPSTAdapter(arch=dict(TINY_ARCH), adapter=dict(width=8))
    model.load_state_dict(converted, strict=False)
    exported = backbone_to_openai(model.state_dict())
    assert all(torch.equal(exported[k], original[k]) for k in original)


def test_torchscript_archive_read_without_executing(tmp_path):
    ref = _reference_clip()
    image = torch.randn(1, 3, 32, 32)
    traced = torch.jit.trace(ref, image)
    path = tmp_path / 'ViT-tiny.pt'
    traced.save(str(path))
    ours = _load(path)
    x = torch.randn(2, 3, 1, 32, 32)
    with torch.no_grad():
        assert (ours(x) - ref.visual(x[:, :, 0])).abs().max() <= 1e-5


def test_detect_layout_and_non_clip_file(tmp_path):
    assert detect_layout({'visual.conv1.weight': torch.zeros(1)}) == 'openai'
    assert detect_layout({
        'vision_model.embeddings.patch_embedding.weight': torch.zeros(1)
    }) == 'hf'
    torch.save({'fc.weight': torch.zeros(2, 2)}, tmp_path / 'resnet.pth')
    with pytest.raises(CheckpointError, match='no CLIP image tower'):
        _load(tmp_path / 'resnet.pth')


def test_wrong_architecture_is_named(tmp_path):
    big = dict(TINY_ARCH, width=96, heads=4)
    hf = _hf_vision(big)
    hf.save_pretrained(tmp_path)
    with pytest.raises(CheckpointError,
                       match=r'another architecture.*width 96 vs 64'):
        _load(tmp_path)


def test_truncated_empty_and_missing_files(tmp_path):
    ref = _reference_clip()
    torch.save(ref.state_dict(), tmp_path / 'ok.pt')
    data = (tmp_path / 'ok.pt').read_bytes()
    (tmp_path / 'cut.pt').write_bytes(data[:len(data) // 2])
    (tmp_path / 'empty.pt').write_bytes(b'')
    with pytest.raises(CheckpointError, match='truncated'):
        _load(tmp_path / 'cut.pt')
    with pytest.raises(CheckpointError, match='empty'):
        _load(tmp_path / 'empty.pt')
    with pytest.raises(FileNotFoundError, match='init_cfg'):
        _load(tmp_path / 'nope.pt')


def test_missing_and_unexpected_keys_are_reported(tmp_path):
    sd = _reference_clip().state_dict()
    partial = {k: v for k, v in sd.items() if k != 'visual.ln_post.bias'}
    torch.save(partial, tmp_path / 'partial.pt')
    with pytest.raises(CheckpointError, match=r'lacks 1 weights.*ln_post'):
        _load(tmp_path / 'partial.pt')
    fewer_blocks = {k: v for k, v in sd.items() if 'resblocks.1.' not in k}
    torch.save(fewer_blocks, tmp_path / 'one_block.pt')
    with pytest.raises(CheckpointError, match='layers 1 vs 2'):
        _load(tmp_path / 'one_block.pt')
    extra = dict(sd, **{'visual.transformer.resblocks.0.extra': torch.ones(1)})
    torch.save(extra, tmp_path / 'extra.pt')
    with pytest.raises(CheckpointError, match='match no backbone parameter'):
        _load(tmp_path / 'extra.pt')


def test_positional_embedding_resized_for_larger_frames(tmp_path):
    ref = _reference_clip()
    torch.save(ref.state_dict(), tmp_path / 'clip.pt')
    model = _load(tmp_path / 'clip.pt', input_resolution=48)
    assert model.positional_embedding.shape == (1 + 6 * 6, 64)
    assert torch.equal(model.positional_embedding[0],
                       ref.visual.positional_embedding[0])


def test_load_checkpoint_file_refuses_pickled_code(tmp_path):
    class Evil:

        def __reduce__(self):
            return (os.system, ('echo pwned',))

    torch.save({'x': Evil()}, tmp_path / 'evil.pt')
    with pytest.raises(CheckpointError):
        load_checkpoint_file(str(tmp_path / 'evil.pt'))
