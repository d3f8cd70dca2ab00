# DAVIS-2017 val label propagation, the CRW (ajabri/videowalk) protocol used
# by SFC and others to compare ResNet-50 image pre-training:
#   res4 features (layer4 removed, layer3 at stride 1 -> stride 8, 1024-d),
#   L2-normalised; top-10 of (first frame + 20 preceding frames), radius 12
#   feature cells on the preceding frames, temperature 0.05, native 480p.
#
#   python tools/benchmarks/davis/label_propagation.py THIS_CONFIG CKPT \
#       --work-dir work_dirs/davis --davis-root data/DAVIS --device cuda
default_scope = 'densecl_plugin'

# A frozen encoder (the tool also runs it in eval mode under no_grad); every
# choice is explicit, as `res4_backbone_cfg()` in
# densecl_plugin/evaluation/davis/label_propagation.py.
encoder = dict(
    type='mmdet.ResNet',  # plain ResNet, torchvision layout
    depth=50,
    num_stages=3,  # no layer4
    strides=(1, 2, 1),  # layer3 at stride 1: res4 at stride 8
    dilations=(1, 1, 1),  # videowalk only changes the stride (no dilation)
    out_indices=(2, ),
    style='pytorch',  # stride in conv2 (3x3), as torchvision
    deep_stem=False,  # the 7x7 conv1/bn1 stem that pre-training trains
    avg_down=False,  # torchvision shortcut: strided 1x1 conv
    frozen_stages=3,  # stem and layer1-3: no gradients, eval even in train()
    norm_eval=True,  # BN uses the pre-trained running statistics
    norm_cfg=dict(type='BN', requires_grad=False),  # frozen affine too
    # the tool never calls init_weights (no checkpoint: PyTorch's default
    # init); if anything does, keep each block's last BN at 1, not 0
    zero_init_residual=False,
    init_cfg=None)

propagation = dict(topk=10, radius=12, n_context=20, temperature=0.05)

data = dict(root='data/DAVIS', split='val', resolution='480p')

batch_size = 5  # frames per encoder forward
