"""Reference solutions, GENERATED from the master notebooks' ``#| export`` cells (``make
export``): ``training_loop`` (03), ``timing`` (04), ``neuron`` (05), ``layers`` (06), ``im2col``
(07). Instructors and maintainers only: never shipped to students (the student package takes a
student's own functions as arguments instead). The builders below bundle them the way the
notebooks do, for tests, benchmarks and graded runs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from course_utils.part_one.train import TrainingLoop
    from course_utils.part_two.chain_rule import Network
    from course_utils.part_two.worked_example import Layers


def reference_training_loop() -> TrainingLoop:
    """Notebook 03's ``train_one_epoch`` and ``evaluate`` (the solutions) as a TrainingLoop."""
    from course_utils.instructor.solutions import training_loop
    from course_utils.part_one.train import TrainingLoop

    return TrainingLoop(training_loop.train_one_epoch, training_loop.evaluate)


def reference_network() -> Network:
    """Notebook 05's activations, ``forward`` and ``backward`` (the solutions) as a Network."""
    from course_utils.instructor.solutions import neuron
    from course_utils.part_two.chain_rule import Network

    return Network(neuron.ACTIVATION_FUNCTIONS, neuron.forward, neuron.backward)


def reference_layers() -> Layers:
    """Notebook 06's layers (the solutions) as the worked example's Layers."""
    from course_utils.instructor.solutions import layers
    from course_utils.part_two.worked_example import Layers

    return Layers(layers.conv_forward_loops, layers.conv_backward_loops, layers.maxpool_forward,
                  layers.maxpool_backward, layers.sigmoid_forward, layers.sigmoid_backward,
                  layers.linear_forward, layers.linear_backward)
