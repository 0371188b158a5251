"""MMPretrain image models with ST-Adapters; MMPretrain without torchvision."""
import copy
import importlib.util
import sys
import warnings

import pytest
import torch
from mmaction.registry import MODELS

from stadapter_mm import compat
from stadapter_mm.checkpoints import CheckpointError, is_adapter_key
from stadapter_mm.checkpoints import mmpretrain_clip
from stadapter_mm.models.backbones.mmpretrain_stadapter import \
    MMPretrainSTAdapter
from stadapter_mm.models.backbones.mmpretrain_utils import build_image_model


# ------------------------------------------------ compat fix 7 (torchvision)
def test_mmpretrain_imports_without_a_working_torchvision():
    """``import stadapter_mm`` (conftest) imported MMPretrain's models."""
    assert 'mmpretrain.models' in sys.modules
    assert 'MobileOneTSM' in MODELS.module_dict  # MMAction2's, needs them
    from mmpretrain.models.utils import box_utils
    if compat._torchvision_loads():
        assert box_utils.boxes.__name__ == 'torchvision.ops.boxes'
        return
    # Nothing else sees a torchvision; MMPretrain's box helpers say why.
    assert 'torchvision' not in sys.modules
    if importlib.util.find_spec('transformers') is not None:
        from transformers.utils import is_torchvision_available
        assert not is_torchvision_available()
    with pytest.raises(ImportError, match='torchvision is not installed or '
                       'does not load'):
        box_utils.boxes.box_iou
    assert compat.import_mmpretrain_models() is sys.modules[
        'mmpretrain.models']


@pytest.fixture
def fake_torchvision(tmp_path, monkeypatch):
    """Write a ``torchvision`` package on the path (working or broken)."""
    if 'torchvision' in sys.modules:
        pytest.skip('a real torchvision is loaded in this process')

    def make(broken: bool) -> None:
        ops = tmp_path / 'torchvision' / 'ops'
        ops.mkdir(parents=True)
        (tmp_path / 'torchvision' / '__init__.py').write_text('')
        (ops / '__init__.py').write_text('')
        (ops / 'boxes.py').write_text(
            'raise RuntimeError("operator torchvision::nms does not exist")'
            if broken else 'def box_iou(a, b):\n    return 0\n')
        monkeypatch.syspath_prepend(str(tmp_path))

    yield make
    for name in [n for n in sys.modules if n.split('.')[0] == 'torchvision']:
        del sys.modules[name]


def test_a_working_torchvision_is_used(fake_torchvision):
    fake_torchvision(broken=False)
    assert compat._torchvision_loads()
    assert sys.modules['torchvision.ops.boxes'].box_iou(1, 2) == 0


def test_a_broken_torchvision_leaves_nothing_behind(fake_torchvision):
    fake_torchvision(broken=True)
    assert not compat._torchvision_loads()
    assert not [n for n in sys.modules if n.split('.')[0] == 'torchvision']


# ----------------------------------------------------------- tiny families
_TINY = dict(embed_dims=64, num_layers=2, num_heads=4,
             feedforward_channels=256)
#: One tiny MMPretrain config per supported family (random weights).
FAMILIES = {
    # OpenAI CLIP image tower in MMPretrain's layout.
    'clip': dict(type='VisionTransformer', arch=_TINY, img_size=32,
                 patch_size=8, pre_norm=True,
                 layer_cfgs=dict(act_cfg=dict(type='QuickGELU')),
                 norm_cfg=dict(type='LN', eps=1e-5)),
    # MAE fine-tuning style: no final norm, mean patch token + ln2.
    'mae': dict(type='VisionTransformer', arch=_TINY, img_size=32,
                patch_size=8, final_norm=False, out_type='avg_featmap'),
    # DINOv2 style: layer scale.
    'dinov2': dict(type='VisionTransformer', arch=_TINY, img_size=32,
                   patch_size=8, layer_scale_init_value=1e-5),
    # EVA-02: RoPE, SwiGLU with sub-LN.
    'eva02': dict(type='mmpretrain.ViTEVA02',
                  arch=dict(_TINY, feedforward_channels=170), img_size=32,
                  patch_size=8, sub_ln=True, final_norm=False,
                  out_type='avg_featmap'),
}
ADAPTER = dict(positions=('attn', 'mlp'), width=16)


def randomize_(module, seed):
    """Random weights; norms and layer scales around 1 (not trivial)."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, tensor in module.state_dict().items():
            if tensor.is_floating_point():
                around_one = 'gamma' in name or (
                    tensor.dim() == 1 and 'norm' in name or 'ln' in name)
                tensor.copy_(torch.randn(tensor.shape, generator=gen) * 0.2 +
                             float(around_one))


@pytest.fixture(scope='module')
def family_ckpts(tmp_path_factory):
    """Each family's image model, saved as an MMPretrain classifier file."""
    root = tmp_path_factory.mktemp('mmpretrain')
    out = {}
    for seed, (name, cfg) in enumerate(FAMILIES.items()):
        model = build_image_model(cfg)
        randomize_(model, seed)
        path = str(root / f'{name}.pth')
        torch.save(dict(meta={}, state_dict={
            'backbone.' + k: v for k, v in model.state_dict().items()}),
            path)
        model.eval()  # (MMPretrain's train() returns None)
        out[name] = (model, path)
    return out


def pretrained(name, path, **kwargs):
    return dict(FAMILIES[name], init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='backbone.'), **kwargs)


def build_family(family_ckpts, name, **kwargs):
    model = MMPretrainSTAdapter(
        pretrained(name, family_ckpts[name][1]),
        **dict(dict(adapter=ADAPTER, num_frames=4), **kwargs))
    model.init_weights()
    return model.eval()


def nonzero_adapters_(model, seed=0):
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for param in param_values(model.adapters()):
            param.copy_(torch.randn(param.shape, generator=gen) * 0.2)


def param_values(modules):
    return [p for m in modules for p in m.parameters()]


def video(n=2, t=4, seed=0):
    return torch.randn(n, 3, t, 32, 32,
                       generator=torch.Generator().manual_seed(seed))


@pytest.mark.parametrize('name', list(FAMILIES))
def test_identity_at_init_freezing_and_temporal_mixing(family_ckpts, name):
    own, _ = family_ckpts[name]
    model = build_family(family_ckpts, name)
    x = video()
    with torch.no_grad():
        feats = model.frame_features(x)
        frames = x.transpose(1, 2).reshape(8, 3, 32, 32)
        expected = own(frames)[-1].view(2, 4, -1)
    assert (feats - expected).abs().max() <= 1e-5
    assert feats.abs().mean() > 0.1
    # One frame: the video feature is the image model's output.
    with torch.no_grad():
        assert torch.allclose(model(x[:, :, :1]), expected[:, 0], atol=1e-5)

    # Only the adapters (found by type) train; 2 blocks x (attn, mlp).
    assert len(model.adapters()) == 4
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert trainable == set(model.trainable_names())
    assert trainable == {f'st_adapters.{n}' for n, _ in
                         model.st_adapters.named_parameters()}
    assert set(model.frozen_state_keys()) == {
        f'image_model.{k}' for k, _ in own.named_parameters()}

    # Non-zero adapters mix frames: reversing time changes the feature.
    nonzero_adapters_(model)
    with torch.no_grad():
        forward, backward = model(x), model(x.flip(2))
        assert (model.frame_features(x) - expected).abs().max() > 1e-3
    assert (forward - backward).abs().max() > 1e-3


# ------------------------------------- cross-check with ViTCLIPSTAdapter
#: ST-Adapters of ViTCLIPSTAdapter's block ``i`` -> MMPretrainSTAdapter's
#: ``st_adapters.{i}.``.
ADAPTER_TO_MMPRETRAIN = {'adapter_pre_attn': 'attn', 'adapter_pre_mlp': 'mlp'}


def clip_to_mmpretrain_backbone(state_dict):
    """A ViTCLIPSTAdapter state dict in MMPretrainSTAdapter's layout."""
    adapters = {k: v for k, v in state_dict.items() if is_adapter_key(k)}
    out = mmpretrain_clip.clip_to_mmpretrain(
        {k: v for k, v in state_dict.items() if k not in adapters},
        prefix='image_model.')
    for key, value in adapters.items():
        index, name, rest = key[len(mmpretrain_clip.CLIP_BLOCKS):].split(
            '.', 2)
        out[f'st_adapters.{index}.{ADAPTER_TO_MMPRETRAIN[name]}.{rest}'] = \
            value
    return out


def test_clip_b16_matches_vit_clip_stadapter():
    """MMPretrain's CLIP ViT-B/16 + the same weights = our CLIP backbone."""
    from stadapter_mm.models import ViTCLIPSTAdapter
    torch.manual_seed(0)
    clip = ViTCLIPSTAdapter(arch='ViT-B/16', adapter='24x384').eval()
    nonzero_adapters_(clip)
    ours = MMPretrainSTAdapter(
        dict(type='VisionTransformer', arch='b', img_size=224, patch_size=16,
             pre_norm=True, layer_cfgs=dict(act_cfg=dict(type='QuickGELU')),
             norm_cfg=dict(type='LN', eps=1e-5)),
        adapter='24x384').eval()
    ours.load_state_dict(clip_to_mmpretrain_backbone(clip.state_dict()),
                         strict=True)
    head = torch.nn.Linear(768, 400)
    x = torch.randn(1, 3, 2, 224, 224,
                    generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        expected, got = head(clip(x)), head(ours(x))
    assert (got - expected).abs().max() <= 1e-4
    assert expected.std() > 0.1


# ------------------------- CLIP files in MMPretrain's layout (two converters)
def mmpretrain_convert_clip():
    """``convert_clip`` of MMPretrain's own ``openai-clip_to_mmpretrain-clip``
    converter, as installed with MMPretrain (wheel) or in its source tree."""
    import os.path as osp
    import runpy

    import mmpretrain
    package = osp.dirname(mmpretrain.__file__)
    script = osp.join('tools', 'model_converters',
                      'openai-clip_to_mmpretrain-clip.py')
    paths = [osp.join(package, '.mim', script),
             osp.join(osp.dirname(package), script)]
    found = [p for p in paths if osp.isfile(p)]
    assert found, f'MMPretrain\'s CLIP converter is not at {paths}'
    return runpy.run_path(found[0])['convert_clip']


@pytest.fixture(scope='module')
def clip_files(tmp_path_factory):
    """A tiny OpenAI CLIP as a state dict and as a TorchScript archive, and
    the state dict converted by MMPretrain's converter (as its CLI saves)."""
    from conftest import TINY_ARCH
    from reference_clip import ReferenceCLIP
    root = tmp_path_factory.mktemp('clip')
    torch.manual_seed(0)
    ref = ReferenceCLIP(**TINY_ARCH).eval()
    paths = {name: str(root / f'{name}.pt')
             for name in ('openai', 'torchscript', 'mmpretrain_tool')}
    torch.save(ref.state_dict(), paths['openai'])
    with warnings.catch_warnings():  # tracing nn.MultiheadAttention
        warnings.simplefilter('ignore', torch.jit.TracerWarning)
        torch.jit.trace(ref, torch.randn(1, 3, 32, 32)).save(
            paths['torchscript'])
    torch.save(mmpretrain_convert_clip()(ref.state_dict()),
               paths['mmpretrain_tool'])
    return paths


def visual_keys(state_dict):
    return {k: v for k, v in state_dict.items() if k.startswith('visual.')}


def test_our_conversion_equals_mmpretrains_converter(clip_files, tmp_path):
    """``clip_to_backbone.py --layout mmpretrain`` writes exactly the image
    tower MMPretrain's converter writes, also from a TorchScript archive,
    which MMPretrain's converter cannot read."""
    from conftest import load_tool
    from mmengine.runner import CheckpointLoader
    tool = load_tool('tools/convert/clip_to_backbone.py')
    converted = torch.load(clip_files['mmpretrain_tool'], weights_only=True)
    theirs = visual_keys(converted)
    # MMPretrain's output beyond the image tower: projection and text tower.
    assert {'visual_proj.proj', 'logit_scale'} <= converted.keys()
    for src in ('openai', 'torchscript'):
        out = str(tmp_path / f'{src}.pth')
        ours = tool.main([clip_files[src], out, '--layout', 'mmpretrain'])
        assert list(ours) == list(theirs), src
        assert all(torch.equal(ours[k], theirs[k]) for k in theirs), src
        assert torch.load(out, weights_only=True).keys() == theirs.keys()
    with pytest.raises(RuntimeError, match='TorchScript'):
        CheckpointLoader.load_checkpoint(clip_files['torchscript'])
    with pytest.raises(CheckpointError, match='adapter_pre_mlp'):
        mmpretrain_clip.clip_to_mmpretrain(
            {'transformer.resblocks.0.adapter_pre_mlp.fc1.weight': None})


@pytest.mark.parametrize('converted', ['mmpretrain_tool', 'our_tool'])
def test_converted_clip_loads_with_prefix_visual(clip_files, converted,
                                                 tmp_path):
    """Either converted file loads into MMPretrainSTAdapter through
    ``init_cfg`` with ``prefix='visual.'`` and gives the features of
    ViTCLIPSTAdapter loaded from the original CLIP file (same adapters)."""
    from conftest import TINY_ARCH, load_tool
    from stadapter_mm.models import ViTCLIPSTAdapter
    path = clip_files.get(converted)
    if converted == 'our_tool':
        path = str(tmp_path / 'our_tool.pth')
        load_tool('tools/convert/clip_to_backbone.py').main(
            [clip_files['torchscript'], path, '--layout', 'mmpretrain'])
    clip = ViTCLIPSTAdapter(
        arch=dict(TINY_ARCH), adapter=ADAPTER, num_frames=4,
        init_cfg=dict(type='Pretrained', checkpoint=clip_files['openai']))
    clip.init_weights()
    nonzero_adapters_(clip.eval())
    ours = MMPretrainSTAdapter(
        dict(FAMILIES['clip'], init_cfg=dict(
            type='Pretrained', checkpoint=path, prefix='visual.')),
        adapter=ADAPTER, num_frames=4)
    ours.init_weights()
    adapters = {k: v for k, v in clip_to_mmpretrain_backbone(
        clip.state_dict()).items() if k.startswith('st_adapters.')}
    assert adapters and not ours.load_state_dict(
        adapters, strict=False).unexpected_keys
    x = video()
    with torch.no_grad():
        expected, got = clip(x), ours.eval()(x)
    assert (got - expected).abs().max() <= 1e-5
    assert expected.std() > 0.1


# ---------------------------------------------------- training machinery
def test_with_cp_gives_the_same_gradients(family_ckpts):
    losses, grads = [], []
    for with_cp in (False, True, [1]):
        model = build_family(family_ckpts, 'eva02', with_cp=with_cp).train()
        nonzero_adapters_(model)
        loss = model(video()).square().sum()
        loss.backward()
        losses.append(loss.detach())
        grads.append(torch.cat([p.grad.flatten() for p in
                                param_values(model.adapters())]))
    for loss, grad in zip(losses[1:], grads[1:]):
        assert torch.allclose(loss, losses[0])
        assert torch.allclose(grad, grads[0], atol=1e-5)
    assert grads[0].abs().max() > 0
    with pytest.raises(ValueError, match='out of range'):
        build_family(family_ckpts, 'eva02', with_cp=[2])


def test_quick_gelu_swap_keeps_values_and_saves_memory(family_ckpts):
    """MMPretrain's QuickGELU is replaced by type: same outputs and
    gradients, one MLP-hidden tensor per block less kept for backward."""
    from mmpretrain.models.utils import QuickGELU as MMPretrainQuickGELU

    from stadapter_mm.models.layers.clip_transformer import QuickGELU
    runs = {}
    for swap in (True, False):
        model = build_family(family_ckpts, 'clip',
                             memory_efficient_act=swap).train()
        nonzero_adapters_(model)
        acts = [type(m) for m in model.modules()
                if isinstance(m, (QuickGELU, MMPretrainQuickGELU))]
        hidden = set()  # storages of (frames, tokens, 256) tensors

        def pack(t):
            if t.shape[-1:] == (256, ) and t.dim() == 3:
                hidden.add(t.untyped_storage().data_ptr())
            return t

        clips = video().requires_grad_()
        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            out = model(clips)
        out.square().sum().backward()
        runs[swap] = dict(acts=acts, hidden=len(hidden), out=out.detach(),
                          grads=[clips.grad] + [
                              p.grad for p in param_values(model.adapters())],
                          keys=list(model.state_dict()))
    swapped, plain = runs[True], runs[False]
    assert swapped['acts'] == [QuickGELU] * 2
    assert plain['acts'] == [MMPretrainQuickGELU] * 2
    assert swapped['keys'] == plain['keys']
    # MMPretrain's keeps the MLP input and its sigmoid, ours the input.
    assert (swapped['hidden'], plain['hidden']) == (2, 4)
    assert torch.equal(swapped['out'], plain['out'])
    # (The last block's MLP adapter gets none: the class token is pooled.)
    assert all(g.abs().max() > 0 for g in plain['grads'][:-6])
    for got, expected in zip(swapped['grads'], plain['grads']):
        assert torch.allclose(got, expected, rtol=1e-5, atol=1e-6)
    # Plain GELU (PyTorch's kernel keeps only its input) is left alone.
    dinov2 = build_image_model_backbone('dinov2')
    assert isinstance(dinov2.image_model.layers[0].ffn.layers[0][1],
                      torch.nn.GELU)


def test_unfreeze_and_frozen_leaves(family_ckpts):
    model = build_family(family_ckpts, 'dinov2', unfreeze=('ln1',
                                                           'pos_embed'))
    trainable = {n for n, p in model.named_parameters() if p.requires_grad}
    assert {'image_model.ln1.weight', 'image_model.pos_embed'} <= trainable
    assert 'image_model.layers.0.ln1.weight' not in trainable
    model.train()
    assert model.image_model.layers[0].ln1.training is False
    assert model.adapters()[0].fc1.training is True
    full = build_family(family_ckpts, 'dinov2', unfreeze='all')
    assert all(p.requires_grad for p in full.parameters())
    with pytest.raises(ValueError, match='Cannot unfreeze'):
        build_family(family_ckpts, 'dinov2', unfreeze=('transformer', ))


def _outputs(model):
    model.eval()
    with torch.no_grad():
        return model.cls_head(model.backbone(video(seed=3)))


def test_trainable_only_checkpoints_refill_from_the_mmpretrain_file(
        family_ckpts, tmp_path):
    from mmaction.apis import init_recognizer
    from mmengine.config import Config
    from mmengine.runner import Runner
    from runner_utils import recognizer_from_backbone, runner_cfg
    path = family_ckpts['dinov2'][1]
    backbone = dict(type='MMPretrainSTAdapter', adapter=ADAPTER,
                    image_model=pretrained('dinov2', path))
    model_cfg = recognizer_from_backbone(backbone)
    hooks = [dict(type='FrozenParamHook', save_trainable_only=True)]
    runner = Runner.from_cfg(Config(runner_cfg(tmp_path, model_cfg, 1,
                                               hooks)))
    runner.train()
    trained = _outputs(runner.model)
    ckpt = torch.load(tmp_path / 'epoch_1.pth', weights_only=True)
    backbone_keys = {k for k in ckpt['state_dict'] if
                     k.startswith('backbone.')}
    assert backbone_keys == {'backbone.' + n for n in
                             runner.model.backbone.trainable_names()}
    assert ckpt['meta']['trainable_only'] is True
    assert len(ckpt['meta']['clip_fingerprint']) == 16

    # init_recognizer / load_from: the frozen weights come from init_cfg.
    model = init_recognizer(Config(dict(model=model_cfg)),
                            str(tmp_path / 'epoch_1.pth'), device='cpu')
    assert torch.allclose(_outputs(model), trained, atol=1e-6)
    # Resume continues from the slim checkpoint.
    resumed = Runner.from_cfg(Config(runner_cfg(
        tmp_path, model_cfg, 2, hooks, resume=True)))
    resumed.train()
    assert resumed.epoch == 2
    # Without the MMPretrain file the slim checkpoint cannot be completed.
    bare = build_image_model_backbone('dinov2')
    with pytest.raises(CheckpointError, match='only the trainable'):
        bare.load_state_dict({k[len('backbone.'):]: v for k, v in
                              ckpt['state_dict'].items()
                              if k.startswith('backbone.')})


def build_image_model_backbone(name, path=None, **kwargs):
    """A tiny backbone whose image model loads ``path`` (or nothing)."""
    image_model = FAMILIES[name] if path is None else pretrained(name, path)
    return MMPretrainSTAdapter(image_model, adapter=ADAPTER, **kwargs)


# ----------------------------------------------------------------- errors
@pytest.mark.parametrize('image_model, match', [
    (dict(type='ResNet', depth=18), "'ResNet' .*no verified per-block "
     'residual token stream'),
    (dict(type='DeiT3', arch=dict(_TINY), img_size=32, patch_size=8),
     "'DeiT3' .*cannot take ST-Adapters"),
    (dict(FAMILIES['mae'], with_cls_token=False), 'exactly one class token'),
    (dict(type='NoSuchViT'), 'not an MMPretrain model'),
])
def test_unsupported_image_models_fail_at_construction(image_model, match):
    with pytest.raises(ValueError, match=match):
        MMPretrainSTAdapter(image_model)


def test_checkpoints_that_do_not_fit_fail_clearly(family_ckpts):
    path = family_ckpts['clip'][1]
    # Another arch (EVA-02 file into a plain ViT) and a wrong prefix.
    with pytest.raises(CheckpointError, match='of another shape'):
        build_image_model_backbone('eva02', path=path).init_weights()
    wrong_prefix = dict(FAMILIES['clip'], init_cfg=dict(
        type='Pretrained', checkpoint=path, prefix='model.'))
    with pytest.raises(CheckpointError, match=r'prefix=.model\.'):
        MMPretrainSTAdapter(wrong_prefix, adapter=None).init_weights()
    no_prefix = dict(FAMILIES['clip'], init_cfg=dict(
        type='Pretrained', checkpoint=path))
    with pytest.raises(CheckpointError, match='weights missing'):
        MMPretrainSTAdapter(no_prefix, adapter=None).init_weights()
    with pytest.raises(ValueError, match='inside image_model'):
        build_image_model_backbone('clip', init_cfg=dict(
            type='Pretrained', checkpoint=path))
    with pytest.raises(ValueError, match='pooling must be one of'):
        build_image_model_backbone('clip', pooling='featmap')


# ------------------------------------------------------ FLOPs, ONNX export
def tiny_recognizer_config(path, name, family_ckpts, adapter=ADAPTER):
    """Write a tiny recognizer config on a family's MMPretrain file."""
    from mmengine.config import Config
    from runner_utils import recognizer_from_backbone
    backbone = dict(type='MMPretrainSTAdapter', adapter=adapter, num_frames=4,
                    image_model=pretrained(name, family_ckpts[name][1]))
    cfg = Config(dict(model=recognizer_from_backbone(backbone, 5),
                      default_scope='mmaction'))
    cfg.dump(str(path))
    return str(path)


def test_flop_tool_counts_the_adapters(family_ckpts, tmp_path):
    from conftest import load_tool
    from mmengine.config import Config
    tool = load_tool('tools/analysis_tools/get_flops.py')
    cfg = Config.fromfile(tiny_recognizer_config(
        tmp_path / 'tiny.py', 'mae', family_ckpts))
    bare = copy.deepcopy(cfg)
    bare.model.backbone.adapter = None
    rows = {}
    for counter in ('torch', 'mmengine'):
        with_adapters = tool.count(cfg, None, 4, counter=counter)
        without = tool.count(bare, None, 4, counter=counter)
        rows[counter] = with_adapters['flops'] - without['flops']
        assert with_adapters['input'] == '4x32x32'
    # 2 blocks x 2 positions, 4 frames of 1 + 16 tokens: fc1 + fc2 (+ the
    # depthwise kernel of 3) multiply-adds per token.
    per_token = 2 * 64 * 16 + 3 * 16
    assert rows['torch'] == 4 * 4 * 17 * per_token
    assert rows['mmengine'] >= rows['torch']


def test_onnx_export_matches_pytorch(family_ckpts, tmp_path):
    pytest.importorskip('onnxruntime')
    pytest.importorskip('onnxscript')
    from conftest import load_tool
    from mmaction.apis import init_recognizer
    cfg = tiny_recognizer_config(tmp_path / 'tiny.py', 'eva02', family_ckpts)
    model = init_recognizer(cfg, None, device='cpu')
    model.backbone.init_weights()
    nonzero_adapters_(model.backbone)
    ckpt = str(tmp_path / 'tiny.pth')
    torch.save(dict(meta={}, state_dict=model.state_dict()), ckpt)
    tool = load_tool('tools/deployment/export_onnx.py')
    result = tool.main([cfg, ckpt, '--out', str(tmp_path / 'tiny.onnx'),
                        '--verify', '--num-frames', '4', '--legacy'])
    assert result['view_shape'] == (3, 4, 32, 32)
    assert max(result['diffs'].values()) < 1e-4


@pytest.mark.parametrize('name,flops_ratio', [
    # 257 tokens per frame instead of 197.
    ('stadapter_vitb14dinov2-12x384_8xb24-8x16x1-12e_k400-rgb.py', (1.3, 1.4)),
    # The same image model, built by MMPretrain: the same count.
    ('stadapter_vitb16clip-12x384_8xb24-8x16x1-12e_k400-rgb.py', (1.0, 1.0)),
])
def test_mmpretrain_recipes_at_full_size(name, flops_ratio):
    """The MMPretrain configs: the CLIP recipe but the image model (meta)."""
    import os.path as osp

    from conftest import ROOT, load_tool
    from mmengine.config import Config
    tool = load_tool('tools/analysis_tools/get_flops.py')
    configs = osp.join(ROOT, 'configs', 'recognition')
    k400 = Config.fromfile(osp.join(configs, 'stadapter_mmpretrain', name))
    clip = Config.fromfile(osp.join(
        configs, 'stadapter',
        'stadapter_vitb16-12x384_8xb24-8x16x1-12e_k400-rgb.py'))
    ours, theirs = (tool.count(c, None, 8, counter='torch')
                    for c in (k400, clip))
    # Same trainable adapters and head.
    assert ours['trainable'] == theirs['trainable']
    assert ours['input'] == '8x224x224'
    low, high = flops_ratio
    assert low <= ours['flops'] / theirs['flops'] <= high
    for key in ('train_pipeline', 'test_pipeline', 'optim_wrapper',
                'param_scheduler', 'custom_hooks'):
        assert k400[key] == clip[key]


def test_frame_order_switch_to_an_mmpretrain_image_model(tmp_path):
    """``projects/frame_order/run.py --image-model mmpretrain`` plumbing.

    (The full job passes: ST-Adapter 100% test top-1, linear probe 23%.)
    """
    from conftest import load_tool
    run = load_tool('projects/frame_order/run.py')
    args = run.parse_args(['--image-model', 'mmpretrain', '--data-root',
                           str(tmp_path)])
    cfgs = [run.load_config(path, args, name) for path, name in zip(
        run.IMAGE_MODELS[args.image_model], ('stadapter', 'probe'))]
    path = run.save_random_backbone(cfgs[0], seed=0)
    assert path == str(tmp_path / 'random_vitw96l4p8_mmpretrain.pth')
    saved = torch.load(path, weights_only=True)['state_dict']
    for cfg, adapters in zip(cfgs, (8, 0)):
        assert run.weights_cfg(cfg).checkpoint == path
        model = MODELS.build(cfg.model)
        model.init_weights()  # MMPretrain's checkpoint path, prefix backbone.
        assert len(model.backbone.adapters()) == adapters
        state = model.backbone.image_model.state_dict()
        assert state.keys() == {k[len('backbone.'):] for k in saved}
        assert all(torch.equal(state[k[len('backbone.'):]], v)
                   for k, v in saved.items())


def test_task_files(family_ckpts, tmp_path):
    """A task file of an MMPretrain-based recognizer round-trips."""
    from mmaction.apis import init_recognizer
    from mmengine.config import Config

    from stadapter_mm.apis import (load_task, make_task, save_task,
                                   task_config)
    cfg = Config.fromfile(tiny_recognizer_config(tmp_path / 'tiny.py',
                                                 'eva02', family_ckpts))
    model = init_recognizer(cfg, None, device='cpu')
    model.init_weights()
    nonzero_adapters_(model.backbone)
    expected = _outputs(model)
    path = save_task(make_task(model, cfg, name='eva02'),
                     str(tmp_path / 'eva02.task'))
    task = load_task(path)
    assert task['backbone'] == dict(
        image_model='ViTEVA02', width=64, layers=2, patch_size=8,
        input_resolution=32, pooling='avg_featmap')
    # No frozen weight (EVA-02's RoPE tables are buffers: they stay).
    image_keys = [k for k in task['state_dict']
                  if k.startswith('backbone.image_model.')]
    assert image_keys and all('rope.freqs_' in k for k in image_keys)
    # The task's config and its adapters + head, frozen weights from the
    # MMPretrain file.
    rebuilt = init_recognizer(task_config(task), None, device='cpu')
    rebuilt.load_state_dict(task['state_dict'], strict=False)
    assert torch.allclose(_outputs(rebuilt), expected, atol=1e-6)
