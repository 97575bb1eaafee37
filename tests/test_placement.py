"""Where a trial's job should run (runtime_ml.driver.placement), fed with plain values; the
placement on a real local-cluster is in test_cluster."""

from runtime_ml.driver.placement import ExecutorSlot, Spreader, choose, location

THREE = [ExecutorSlot("0", "10.0.0.1", 2), ExecutorSlot("1", "10.0.0.2", 2),
         ExecutorSlot("2", "10.0.0.3", 2)]


def test_each_trial_goes_to_the_executor_running_the_fewest_of_the_fmins_trials():
    assert choose(THREE, {}).id == "0"
    assert choose(THREE, {"0": 1}).id == "1"
    assert choose(THREE, {"0": 1, "1": 1}).id == "2"
    assert choose(THREE, {"0": 1, "1": 1, "2": 1}).id == "0"  # a second trial only when all have one


def test_a_full_executor_is_never_chosen_and_with_every_slot_busy_spark_decides():
    assert choose(THREE, {"0": 2, "1": 0, "2": 1}).id == "1"
    assert choose(THREE, {"0": 2, "1": 2, "2": 2}) is None


def test_one_executor_leaves_nothing_to_choose():
    assert choose(THREE[:1], {}) is None
    assert choose([], {}) is None


def test_ties_go_to_more_free_slots_then_to_the_lowest_executor_id():
    wide = [ExecutorSlot("10", "h", 1), ExecutorSlot("9", "h", 4), ExecutorSlot("2", "h", 4)]
    assert choose(wide, {}).id == "2"
    assert choose(wide, {"2": 1, "9": 1}).id == "10"


def test_a_host_spark_cannot_name_in_a_location_is_never_chosen():
    named = [ExecutorSlot("0", "worker_1", 2), ExecutorSlot("1", "worker-2", 2)]
    assert choose(named, {"1": 1}).id == "1"
    assert choose(named, {"1": 2}) is None


def test_the_location_is_sparks_executor_location_string():
    assert location(THREE[1]) == "executor_10.0.0.2_1"


def test_the_spreader_counts_trials_until_given_back_and_rereads_executors_every_two_seconds():
    now = [0.0]
    listed = [THREE[:2]]
    reads = []

    def read():
        reads.append(now[0])
        return listed[0]

    spreader = Spreader(read, clock=lambda: now[0])
    first, second = spreader.take(), spreader.take()
    assert (first.id, second.id) == ("0", "1")
    spreader.give_back(first)
    assert spreader.take().id == "0"
    listed[0] = THREE  # a third executor registers
    assert spreader.take().id == "0"  # the list is 0 s old: not read again
    now[0] = 2.0
    assert spreader.take().id == "2"
    assert reads == [0.0, 2.0]
    spreader.give_back(None)  # a trial placed by Spark: nothing to give back


def test_an_executor_without_a_slot_for_trials_is_never_chosen():
    executors = [ExecutorSlot("0", "h", 0), ExecutorSlot("1", "h", 1)]
    assert choose(executors, {}).id == "1"
