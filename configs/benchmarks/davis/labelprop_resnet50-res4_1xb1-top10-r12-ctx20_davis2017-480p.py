# DAVIS-2017 val label propagation, the CRW (ajabri/videowalk) protocol used
# by SFC and others to compare ResNet-50 image pre-training:
#   res4 features (layer4 removed, layer3 at stride 1 -> stride 8, 1024-d),
#   L2-normalised; top-10 of (first frame + 20 preceding frames), radius 12
#   feature cells on the preceding frames, temperature 0.05, native 480p.
#
#   python tools/benchmarks/davis/label_propagation.py THIS_CONFIG CKPT \
#       --work-dir work_dirs/davis --davis-root data/DAVIS --device cuda
default_scope = 'densecl_plugin'

encoder = dict(
    type='mmdet.ResNet',
    depth=50,
    num_stages=3,  # no layer4
    strides=(1, 2, 1),  # layer3 at stride 1: res4 at stride 8
    dilations=(1, 1, 1),
    out_indices=(2, ),
    style='pytorch',
    norm_eval=True,
    norm_cfg=dict(type='BN', requires_grad=False))

propagation = dict(topk=10, radius=12, n_context=20, temperature=0.05)

data = dict(root='data/DAVIS', split='val', resolution='480p')

batch_size = 5  # frames per encoder forward
