"""An independent restatement of OpenAI CLIP's image tower, for tests only.

It follows the published architecture (pre-LN transformer with
``nn.MultiheadAttention`` on (L, N, D) tokens, QuickGELU MLP, class token,
learned positional embedding, ``ln_pre``/``ln_post`` and a projection) and
shares no code with :mod:`stadapter_mm`, so agreement between the two is
evidence that the backbone reproduces the image model.
"""
from collections import OrderedDict

import torch
from torch import nn


class _QuickGELU(nn.Module):

    def forward(self, x):
        return x * torch.sigmoid(1.702 * x)


class _Block(nn.Module):

    def __init__(self, width, heads):
        super().__init__()
        self.attn = nn.MultiheadAttention(width, heads)
        self.ln_1 = nn.LayerNorm(width)
        self.mlp = nn.Sequential(
            OrderedDict([('c_fc', nn.Linear(width, 4 * width)),
                         ('gelu', _QuickGELU()),
                         ('c_proj', nn.Linear(4 * width, width))]))
        self.ln_2 = nn.LayerNorm(width)

    def forward(self, x):
        y = self.ln_1(x)
        x = x + self.attn(y, y, y, need_weights=False)[0]
        return x + self.mlp(self.ln_2(x))


class _Transformer(nn.Module):

    def __init__(self, width, layers, heads):
        super().__init__()
        self.resblocks = nn.Sequential(
            *[_Block(width, heads) for _ in range(layers)])

    def forward(self, x):
        return self.resblocks(x)


class ReferenceVisual(nn.Module):
    """OpenAI-style CLIP ``visual`` module.

    ``forward`` returns ``ln_post`` of the class token, shape (B, width),
    i.e. the image feature before the text-aligned projection.
    """

    def __init__(self, input_resolution, patch_size, width, layers, heads,
                 output_dim=32):
        super().__init__()
        self.conv1 = nn.Conv2d(3, width, patch_size, patch_size, bias=False)
        grid = input_resolution // patch_size
        self.class_embedding = nn.Parameter(torch.randn(width) * 0.1)
        self.positional_embedding = nn.Parameter(
            torch.randn(grid * grid + 1, width) * 0.1)
        self.ln_pre = nn.LayerNorm(width)
        self.transformer = _Transformer(width, layers, heads)
        self.ln_post = nn.LayerNorm(width)
        self.proj = nn.Parameter(torch.randn(width, output_dim) * 0.1)
        # Non-trivial norms so that a wrong key mapping cannot go unnoticed.
        with torch.no_grad():
            for m in self.modules():
                if isinstance(m, nn.LayerNorm):
                    m.weight.uniform_(0.5, 1.5)
                    m.bias.normal_(0, 0.1)

    def forward(self, image):
        x = self.conv1(image).flatten(2).permute(0, 2, 1)
        cls = self.class_embedding.expand(x.shape[0], 1, -1)
        x = torch.cat([cls, x], dim=1) + self.positional_embedding
        x = self.ln_pre(x).permute(1, 0, 2)  # (L, B, D) as OpenAI's code
        x = self.transformer(x).permute(1, 0, 2)
        return self.ln_post(x[:, 0, :])


class ReferenceCLIP(nn.Module):
    """Image tower plus a stand-in text part, laid out like OpenAI's CLIP."""

    def __init__(self, **arch):
        super().__init__()
        self.visual = ReferenceVisual(**arch)
        self.token_embedding = nn.Embedding(10, 16)
        self.logit_scale = nn.Parameter(torch.ones([]))

    def forward(self, image):
        return self.visual(image)
