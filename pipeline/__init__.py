"""Pipeline definition, configuration and runners for tfx-image-finetune."""
