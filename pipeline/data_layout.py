"""Where the examples come from, resolved once per run: the value `create_pipeline` and the runners share.

A local image folder is listed here and nowhere else before ExampleGen reads it (its layout checked, its
classes and file count taken in the same pass); a cloud compile lists nothing and takes --split-folders and
--num-classes instead.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional

from tfx_image_finetune.components.image_folder_example_gen import layout
from tfx_image_finetune.config import PipelineConfig
from tfx_image_finetune.data_contract import TEST_SPLIT


@dataclass(frozen=True)
class DataLayout:
    root: str  # the image root or the TFRecord folder
    split_folders: Optional[List[str]]  # [train, validation(, test)] of an already-split image root, else None
    classes: Optional[List[str]]  # class names in id order when known without reading examples, else None
    num_classes: int
    local_files: Optional[int] = None  # files under a local image root (None: remote, TFRecords, or not listed)
    evaluation_split: str = TEST_SPLIT  # what the Evaluator blesses on: never used to choose the model

    @classmethod
    def resolve(cls, cfg: PipelineConfig, check: bool = False) -> "DataLayout":
        """`check`: also walk a local image root (layout errors name the folder; counts its files)."""
        d = cfg.data
        root = d.path or cfg.demo_data_dir
        if d.source != "image_folder":
            return cls(root, None, None, int(d.num_classes))
        split_folders = layout.resolve_split_folders(root, d.split_folders)
        local = "://" not in root
        files = layout.check_layout(root, layout.split_dirs_of(split_folders)) if check and local else None
        if d.num_classes:  # given (a cloud compile): the folder is not listed
            return cls(root, split_folders, None, int(d.num_classes), files)
        # Sorted class folders, as the label vocabulary sorts them.
        classes = sorted(layout.class_folders(f"{root.rstrip('/')}/{split_folders[0]}" if split_folders else root))
        return cls(root, split_folders, classes, len(classes), files)
