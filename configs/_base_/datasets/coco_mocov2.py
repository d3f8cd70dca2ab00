# COCO train2017 images, unlabeled: data/coco/train2017/*.jpg. Everything
# else is the ImageNet loader's (imagenet_mocov2.py: 32 images per GPU, the
# 224 px MoCo v2 views of mocov2_pipeline.py).
_base_ = ['./imagenet_mocov2.py']
train_dataloader = dict(
    dataset=dict(
        data_root='data/coco/', data_prefix=dict(img_path='train2017/')))
