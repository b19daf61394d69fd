"""The recipe's model: parameter counts, trainable flags per phase and strategy, BatchNorm, head and loss."""

import logging

import numpy as np
import pytest
from tfx_image_finetune.trainer.keras2 import keras, tf

from tfx_image_finetune.config import ModelConfig, Strategy, TrainingConfig
from tfx_image_finetune.trainer.model import build_model, compile_model, first_unfrozen_layer, probabilities, set_phase


def _cfg(**overrides):
    return ModelConfig(**overrides)


def _counts(model):
    trainable = sum(int(np.prod(w.shape)) for w in model.trainable_weights)
    non_trainable = sum(int(np.prod(w.shape)) for w in model.non_trainable_weights)
    return trainable + non_trainable, trainable, non_trainable


@pytest.fixture(scope="module")
def xception():
    return build_model(_cfg(image_size=150), 2, weights=None)


def test_default_xception_matches_recipe_parameter_counts(xception):
    model, base = xception
    assert base.output_shape == (None, 5, 5, 2048)
    set_phase(base, 1, _cfg())
    assert _counts(model) == (20_863_529, 2_049, 20_861_480)
    set_phase(base, 2, _cfg(strategy=1))
    assert _counts(model) == (20_863_529, 20_809_001, 54_528)


def test_base_called_in_inference_mode_and_head_layers(xception):
    model, base = xception
    names = [layer.name for layer in model.layers]
    assert names[-3:] == ["avg_pool", "dropout", "logits"]
    assert model.get_layer("dropout").rate == 0.2
    augmentation = model.get_layer("augmentation")
    assert [type(layer).__name__ for layer in augmentation.layers] == ["RandomFlip", "RandomRotation"]
    # The base's call was recorded with training=False.
    node = base.inbound_nodes[-1]
    assert node.call_kwargs.get("training") is False


def test_strategy_two_unfreezes_only_the_top_of_the_base(xception):
    model, base = xception
    cfg = _cfg(strategy=2, unfreeze_fraction=0.25)
    set_phase(base, 2, cfg)
    cut = first_unfrozen_layer(base, cfg)
    assert 0 < cut < len(base.layers)
    assert not any(layer.trainable for layer in base.layers[:cut])
    assert all(layer.trainable for layer in base.layers[cut:])
    _, trainable, _ = _counts(model)
    assert 2_049 < trainable < 20_809_001
    by_name = _cfg(strategy=2, unfreeze_from_layer="block14_sepconv1")
    set_phase(base, 2, by_name)
    assert base.get_layer("block13_sepconv2").trainable is False
    assert base.get_layer("block14_sepconv1").trainable is True
    with pytest.raises(ValueError, match="not a layer"):
        first_unfrozen_layer(base, _cfg(strategy=2, unfreeze_from_layer="nope"))


def test_strategy_three_has_no_phase_two():
    from tfx_image_finetune.trainer.train import phases

    training = TrainingConfig(head_epochs=4, finetune_epochs=2)
    assert [phase for phase, _, _ in phases(_cfg(strategy=Strategy.CLASSIFIER_ONLY), training)] == [1]
    assert [phase for phase, _, _ in phases(_cfg(strategy=Strategy.UPPER_LAYERS), training)] == [1, 2]


@pytest.mark.parametrize("num_classes, units, loss", [
    (2, 1, keras.losses.BinaryCrossentropy),
    (5, 5, keras.losses.SparseCategoricalCrossentropy),
])
def test_head_and_loss_follow_class_count(num_classes, units, loss):
    model, base = build_model(_cfg(backbone="mobilenet_v2", alpha=0.35, image_size=96), num_classes, weights=None)
    assert model.get_layer("logits").units == units
    compile_model(model, num_classes, 1e-3)
    assert isinstance(model.loss, loss) and model.loss.get_config()["from_logits"]
    probs = probabilities(model(tf.zeros([3, 96, 96, 3])), num_classes).numpy()
    assert probs.shape == (3, num_classes)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, rtol=1e-6)


@pytest.mark.slow  # traces and runs a whole MobileNetV2 training step
def test_phase_two_step_leaves_batchnorm_statistics_unchanged():
    cfg = _cfg(backbone="mobilenet_v2", alpha=0.35, image_size=96)
    model, base = build_model(cfg, 2, weights=None)
    set_phase(base, 2, cfg)
    compile_model(model, 2, 1e-2)
    moving = [w for w in base.weights if "moving_" in w.name]
    assert moving and all(not w.trainable for w in moving)
    kernels = [w for w in base.trainable_weights if "kernel" in w.name]
    before_moving = [w.numpy().copy() for w in moving]
    before_kernels = [w.numpy().copy() for w in kernels]
    x = tf.random.uniform([8, 96, 96, 3], -1, 1, seed=1)
    y = tf.constant([0, 1] * 4, dtype=tf.float32)
    model.train_on_batch(x, y)
    for a, w in zip(before_moving, moving):
        np.testing.assert_array_equal(a, w.numpy())
    # The step did train the unfrozen base, while BatchNorm statistics stayed.
    assert any(not np.array_equal(a, w.numpy()) for a, w in zip(before_kernels, kernels))


@pytest.mark.parametrize("backbone, size", [("efficientnet_b0", 64), ("resnet50", 64)])
def test_other_backbones_build_with_their_pixel_scaling(backbone, size):
    model, _ = build_model(_cfg(backbone=backbone, image_size=size), 3, weights=None)
    layer_names = [layer.name for layer in model.layers]
    assert "to_0_255" in layer_names
    assert ("caffe_preprocess" in layer_names) == (backbone == "resnet50")
    assert model(tf.zeros([1, size, size, 3])).shape == (1, 3)


def test_random_init_batchnorm_calibration_gives_informative_features():
    from tfx_image_finetune.trainer.model import calibrate_batchnorm

    cfg = _cfg(backbone="mobilenet_v2", alpha=0.35, image_size=96)
    model, base = build_model(cfg, 2, weights=None)
    features = keras.Model(model.input, model.get_layer("avg_pool").output)
    bright = tf.random.uniform([16, 96, 96, 3], 0.2, 1.0, seed=2)
    dark = tf.random.uniform([16, 96, 96, 3], -1.0, -0.2, seed=3)
    images = tf.concat([bright, dark], axis=0)
    assert float(tf.math.reduce_std(features(images))) < 1e-6  # random BatchNorm stats: features vanish
    set_phase(base, 1, cfg)
    calibrate_batchnorm(model, base, images)
    assert base.trainable is False
    out = features(images).numpy()
    assert out.std() > 1e-3
    # The two kinds of image are told apart by the (untrained) features.
    assert np.abs(out[:16].mean(axis=0) - out[16:].mean(axis=0)).max() > 1e-3


def test_best_weights_across_both_phases_are_restored(tmp_path):
    """Phase 1 really learns (a small conv base whose features separate bright from dark images); phase 2,
    unfrozen, becomes overconfident on selection labels with a few exceptions and its val_loss soars. The
    weights left in the model must be those of phase 1's last epoch, not phase 2's (Keras' own
    restore_best_weights looks within one fit() only)."""
    from tfx_image_finetune.trainer.train import train_two_phases

    model, base, train, selection = _bright_and_dark()
    training = TrainingConfig(head_epochs=3, finetune_epochs=2, head_learning_rate=0.05,
                              finetune_learning_rate=0.5, early_stopping_patience=10, feature_views=0)
    history = train_two_phases(model, base, train, selection, 2, _cfg(strategy=1), training,
                               log_dir=str(tmp_path / "tb"))
    assert [row["phase"] for row in history["epochs"]] == [1, 1, 1, 2, 2]
    val_losses = [row["val_loss"] for row in history["epochs"]]
    assert val_losses[0] > val_losses[1] > val_losses[2], val_losses  # phase 1 learns: its epochs differ
    assert min(val_losses[3:]) > 2 * val_losses[2], val_losses  # phase 2 does harm
    assert history["best_epoch"] == 3
    compile_model(model, 2, 1e-3)
    restored = model.evaluate(selection, verbose=0)[0]
    assert restored == pytest.approx(val_losses[2], rel=1e-4)


def test_selection_last_trains_the_whole_budget_and_keeps_its_last_weights(tmp_path):
    """--selection last: no early stopping (patience 0 would stop phase 2 after its first worse epoch) and the
    last epoch's weights stay, however much worse its selection loss is."""
    from tfx_image_finetune.trainer.train import train_two_phases

    model, base, train, selection = _bright_and_dark()
    training = TrainingConfig(head_epochs=3, finetune_epochs=2, head_learning_rate=0.05, finetune_learning_rate=0.5,
                              early_stopping_patience=0, feature_views=0, selection="last")
    history = train_two_phases(model, base, train, selection, 2, _cfg(strategy=1), training,
                               log_dir=str(tmp_path / "tb"))
    assert [row["phase"] for row in history["epochs"]] == [1, 1, 1, 2, 2]
    val_losses = [row["val_loss"] for row in history["epochs"]]
    assert min(val_losses[3:]) > 2 * val_losses[2], val_losses  # the last epoch is not the best one ...
    assert history["best_epoch"] == 5 and history["selection"] == "last"
    compile_model(model, 2, 1e-3)
    assert model.evaluate(selection, verbose=0)[0] == pytest.approx(val_losses[-1], rel=1e-4)  # ... and is kept


def _bright_and_dark():
    """(model, base, train, selection): a small conv base whose features separate bright from dark images; the
    selection labels have 8 of 64 exceptions, so an unfrozen phase at a high learning rate overfits them."""
    keras.utils.set_random_seed(0)
    base = keras.Sequential([keras.layers.Conv2D(8, 3, activation="relu"), keras.layers.GlobalAveragePooling2D()])
    inputs = keras.Input((16, 16, 3))
    model = keras.Model(inputs, keras.layers.Dense(1)(base(inputs, training=False)))
    bright = tf.random.uniform([32, 16, 16, 3], 0.0, 1.0, seed=2)
    dark = tf.random.uniform([32, 16, 16, 3], -1.0, 0.0, seed=3)
    x = tf.concat([bright, dark], axis=0)
    train = tf.data.Dataset.from_tensor_slices((x, tf.constant([1.0] * 32 + [0.0] * 32))).shuffle(64, seed=1).batch(16)
    exceptions = tf.constant([0.0] * 4 + [1.0] * 28 + [1.0] * 4 + [0.0] * 28)  # 8 of 64 labelled the other way
    selection = tf.data.Dataset.from_tensor_slices((x, exceptions)).batch(16)
    return model, base, train, selection


def test_one_repeated_iterator_gives_each_epoch_exactly_one_pass(tmp_path):
    """With the example count known, fit() runs over train_ds.repeat() with steps_per_epoch (no iterator torn
    down per epoch). Each epoch must still be one whole pass, partial last batch included: the weights equal
    those of Keras' own per-epoch iterators over the same unshuffled batches."""
    from tfx_image_finetune.trainer.train import train_two_phases

    x = tf.random.uniform([60, 16, 16, 3], -1.0, 1.0, seed=4)  # 60 = 3 batches of 16 + one of 12
    y = tf.cast(tf.reduce_mean(x, axis=[1, 2, 3]) > 0, tf.float32)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(16)
    training = TrainingConfig(head_epochs=2, finetune_epochs=2, head_learning_rate=0.05, finetune_learning_rate=0.05,
                              early_stopping_patience=10, feature_views=0, batch_size=16)
    weights, histories = [], []
    for train_examples in (None, 60):
        keras.utils.set_random_seed(0)
        base = keras.Sequential([keras.layers.Conv2D(4, 3), keras.layers.GlobalAveragePooling2D()])
        inputs = keras.Input((16, 16, 3))
        model = keras.Model(inputs, keras.layers.Dense(1)(base(inputs, training=False)))
        histories.append(train_two_phases(model, base, data, data, 2, _cfg(strategy=1), training, str(tmp_path / "tb"),
                                          train_examples=train_examples))
        weights.append(model.get_weights())
    assert [len(h["epochs"]) for h in histories] == [4, 4]
    assert all(row["epoch_seconds"] > 0 for row in histories[1]["epochs"])
    for per_epoch, repeated in zip(*weights):
        np.testing.assert_allclose(per_epoch, repeated, rtol=1e-5, atol=1e-6)


@pytest.mark.slow  # trains a whole MobileNetV2 model (features, then head)
def test_phase_one_on_cached_features_trains_the_models_own_head(tmp_path):
    """The head fitted on cached pooled features is the model's head: the whole model on images then gives
    the head's selection loss, the base is untouched, and each view is a different augmentation."""
    from tfx_image_finetune.trainer.cached_features import pooled_features
    from tfx_image_finetune.trainer.model import calibrate_batchnorm
    from tfx_image_finetune.trainer.train import train_two_phases

    keras.utils.set_random_seed(0)
    cfg = _cfg(backbone="mobilenet_v2", alpha=0.35, strategy=3, dropout=0.0, image_size=32)
    model, base = build_model(cfg, 2, weights=None)
    x = tf.concat([tf.fill([16, 32, 32, 3], 0.8), tf.fill([16, 32, 32, 3], -0.8)], axis=0)
    x += tf.random.uniform(x.shape, -0.2, 0.2, seed=1)
    x = tf.concat([x[:, :, :16] * 0.2, x[:, :, 16:]], axis=2)  # asymmetric: a flipped view differs
    y = tf.constant([1.0] * 16 + [0.0] * 16)
    set_phase(base, 1, cfg)
    calibrate_batchnorm(model, base, x)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    base_before = [w.numpy().copy() for w in base.weights]
    head_before = model.get_layer("logits").get_weights()[0].copy()

    views, _ = pooled_features(model, data, 2, augment=True)
    assert views.shape == (64, model.get_layer("avg_pool").output.shape[-1])
    assert np.abs(views[:32] - views[32:]).max() > 1e-6  # two different random views of each image

    training = TrainingConfig(head_epochs=3, finetune_epochs=0, head_learning_rate=1e-2, finetune_learning_rate=1e-5,
                              early_stopping_patience=10, feature_views=2, batch_size=8, seed=1)
    history = train_two_phases(model, base, data, data, 2, cfg, training, log_dir=str(tmp_path / "tb"))
    assert [row["phase"] for row in history["epochs"]] == [1, 1, 1]
    assert not np.allclose(model.get_layer("logits").get_weights()[0], head_before)  # the model's head learned
    assert all(np.array_equal(before, after.numpy()) for before, after in zip(base_before, base.weights))
    compile_model(model, 2, 1e-3)
    best = min(row["val_loss"] for row in history["epochs"])
    assert model.evaluate(data, verbose=0)[0] == pytest.approx(best, rel=1e-4)  # whole model = best head epoch


def test_balanced_class_weight_moves_the_decision_towards_the_rare_class(tmp_path):
    """90/10 labels on uninformative features: unweighted, the model predicts the majority; with the Trainer's
    balanced weights (total / (classes * count)), the rare class weighs as much and p(rare) moves to ~0.5."""
    from tfx_image_finetune.trainer.task import class_weights
    from tfx_image_finetune.trainer.train import train_two_phases

    weights = class_weights(["common", "rare"], {"common": 180, "rare": 20})
    assert weights == pytest.approx({"common": 200 / 360, "rare": 5.0})
    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(200, 4)).astype("float32"), (np.arange(200) % 10 == 0).astype("float32")
    ds = tf.data.Dataset.from_tensor_slices((x, y)).batch(50)
    mean_p = {}
    for name, class_weight in [("none", None), ("balanced", {0: weights["common"], 1: weights["rare"]})]:
        inputs = keras.Input((4,))
        base = keras.Sequential([keras.layers.Dense(4)])
        model = keras.Model(inputs, keras.layers.Dense(1)(base(inputs)))
        training = TrainingConfig(head_epochs=40, finetune_epochs=0, head_learning_rate=0.05,
                                  finetune_learning_rate=1e-5, early_stopping_patience=100, feature_views=0)
        train_two_phases(model, base, ds, ds, 2, _cfg(strategy=3), training, str(tmp_path / name),
                         class_weight=class_weight)
        mean_p[name] = float(tf.reduce_mean(tf.sigmoid(model.predict(x, verbose=0))))
    assert mean_p["none"] < 0.2 and 0.35 < mean_p["balanced"] < 0.65, mean_p


@pytest.mark.parametrize("classes", [2, 3])
def test_logistic_head_weights_classify_raw_features_and_take_the_penalty_the_selection_split_prefers(classes):
    """Features far from standard (offset 1000, scales 1e-3..1e3): the fit standardises them, so the Dense
    weights must fold that back in to classify the raw features the model will give them."""
    from tfx_image_finetune.trainer.logistic_head import fit

    rng = np.random.default_rng(0)
    centers = rng.normal(size=(classes, 16)) * 2

    def sample(n):
        y = np.arange(n) % classes
        x = centers[y] + rng.normal(size=(n, 16))
        return 1000 + x * np.logspace(-3, 3, 16), y

    found = fit(sample(300), sample(60), classes)
    x, y = sample(400)
    logits = x @ found["kernel"] + found["bias"]
    predicted = (logits[:, 0] > 0).astype(int) if classes == 2 else logits.argmax(axis=1)
    assert found["kernel"].shape == (16, 1 if classes == 2 else classes)
    assert (predicted == y).mean() > 0.9
    assert found["selection_loss"][str(found["l2"])] == min(found["selection_loss"].values())


def test_the_refit_learns_from_the_selection_rows_with_the_penalty_they_chose():
    """Selection rows from shifted class centres: refitted with them, the head classifies that shift better,
    and the penalty is still the one the selection split chose before it joined."""
    from tfx_image_finetune.trainer.logistic_head import fit

    rng = np.random.default_rng(1)
    centers = rng.normal(size=(3, 8))

    def sample(n, shift):
        y = np.arange(n) % 3
        return centers[y] + shift * np.eye(8)[y + 3] + rng.normal(size=(n, 8)) * 0.7, y

    train, selection, shifted = sample(90, 0.0), sample(60, 3.0), sample(600, 3.0)
    plain, refitted = fit(train, selection, 3), fit(train, selection, 3, refit=3)

    def accuracy(found):
        return ((shifted[0] @ found["kernel"] + found["bias"]).argmax(axis=1) == shifted[1]).mean()

    assert (refitted["l2"], refitted["selection_loss"]) == (plain["l2"], plain["selection_loss"])
    assert accuracy(refitted) > accuracy(plain) + 0.05, (accuracy(refitted), accuracy(plain))


def test_the_selection_split_joins_the_training_only_after_the_logistic_head_with_the_last_weights_kept():
    from tfx_image_finetune.trainer.train import refitted

    both = tf.data.Dataset.range(3)
    assert refitted(TrainingConfig(), "logistic", both)
    assert not refitted(TrainingConfig(), "epochs", both)  # the selection split still chooses the epoch
    assert not refitted(TrainingConfig(selection="val_loss"), "logistic", both)
    assert not refitted(TrainingConfig(refit=False), "logistic", both)
    assert not refitted(TrainingConfig(), "logistic", None)


@pytest.mark.slow  # a whole (small) MobileNetV2: features, the logistic head, one fine-tuning epoch
def test_logistic_phase_one_is_one_history_row_and_fine_tuning_then_keeps_its_last_weights(tmp_path):
    from tfx_image_finetune.trainer.model import calibrate_batchnorm
    from tfx_image_finetune.trainer.train import train_two_phases

    keras.utils.set_random_seed(0)
    cfg = _cfg(backbone="mobilenet_v2", alpha=0.35, strategy=1, dropout=0.0, image_size=32)
    model, base = build_model(cfg, 2, weights=None)
    x = tf.concat([tf.fill([16, 32, 32, 3], 0.8), tf.fill([16, 32, 32, 3], -0.8)], axis=0)
    x += tf.random.uniform(x.shape, -0.2, 0.2, seed=1)
    y = tf.constant([1.0] * 16 + [0.0] * 16)
    set_phase(base, 1, cfg)
    calibrate_batchnorm(model, base, x)
    data = tf.data.Dataset.from_tensor_slices((x, y)).batch(8)
    training = TrainingConfig(head_epochs=20, finetune_epochs=1, head_learning_rate=1e-2, finetune_learning_rate=1e-5,
                              feature_views=2, batch_size=8, seed=1, head_fit="logistic")
    history = train_two_phases(model, base, data, data, 2, cfg, training, log_dir=str(tmp_path / "tb"))
    assert [(row["phase"], row["epoch"]) for row in history["epochs"]] == [(1, 1), (2, 2)]  # not 20 head epochs
    first = history["epochs"][0]
    assert first["head_fit"] == "logistic"
    # The model's head is the chosen fit: Keras' selection loss is scikit-learn's for that penalty.
    assert first["val_loss"] == pytest.approx(first["selection_loss_by_l2"][str(first["l2"])], abs=1e-3)
    # --selection auto after the logistic fit: the budget's last weights (the selection split chose the penalty)
    assert history["selection"] == "last" and history["head_fit"] == "logistic" and history["best_epoch"] == 2
    compile_model(model, 2, 1e-3)
    assert model.evaluate(data, verbose=0)[0] == pytest.approx(history["epochs"][-1]["val_loss"], rel=1e-4)


def test_auto_head_fit_is_logistic_on_small_data_only_and_never_over_a_warm_head_or_several_replicas():
    from tfx_image_finetune.trainer.train import logistic_head

    from tfx_image_finetune.trainer.train import selection_of

    auto = TrainingConfig()
    assert auto.head_fit == "auto" and auto.selection == "auto"
    assert selection_of(auto, "logistic") == "last" and selection_of(auto, "epochs") == "val_loss"
    assert selection_of(TrainingConfig(selection="val_loss"), "logistic") == "val_loss"
    assert logistic_head(auto, None, 999) and not logistic_head(auto, None, 1000)
    assert not logistic_head(auto, None, None)  # count unknown: as the recipe
    assert not logistic_head(TrainingConfig(warm_start=True), None, 100)
    assert logistic_head(TrainingConfig(head_fit="logistic"), None, 5000)
    assert not logistic_head(TrainingConfig(head_fit="epochs"), None, 100)


def test_head_epoch_settings_that_the_logistic_fit_does_not_use_are_named_in_a_warning(caplog):
    from tfx_image_finetune.trainer.train import logistic_head

    with caplog.at_level(logging.WARNING, logger="tfx_image_finetune.trainer.train"):
        assert logistic_head(TrainingConfig(), None, 300)  # the defaults: nothing to say
        assert not caplog.records
        assert logistic_head(TrainingConfig(head_epochs=30, head_learning_rate=1e-2), None, 300)
        assert not logistic_head(TrainingConfig(head_epochs=30), None, 1000)  # by epochs: used
    [record] = caplog.records
    assert ("phase 1 is the logistic head fit (300 training images, under 1000: --head-fit auto), which does not "
            "use head_epochs 30 (--head-epochs) or head_learning_rate 0.01 (--head-learning-rate): --head-fit "
            "epochs trains the head by epochs" == record.getMessage())
