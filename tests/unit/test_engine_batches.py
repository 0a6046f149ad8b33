"""What a Dask worker builds from the cleaned partitions in the scratch directory."""

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from retrain.engine.batches import ScratchPart, scratch_rows


@pytest.fixture
def scratch(tmp_path):
    """Three cleaned partitions of 100, 7 and 250 rows, as clean_partition writes them (one row
    group each, pandas metadata on), with some rows dropped as duplicates."""
    rng = np.random.default_rng(4)
    parts, frames, first = [], [], 0
    for index, (rows, dropped) in enumerate([(100, [0, 5, 99]), (7, []), (250, [10, 11, 200, 249])]):
        frame = pd.DataFrame(
            {
                "id": [f"c{first + i}" for i in range(rows)],
                "x": rng.normal(size=rows),
                "plan": pd.Categorical(rng.choice(["a", "b"], rows)),
            }
        )
        first += rows
        path = tmp_path / f"part.{index}.parquet"
        pq.write_table(pa.Table.from_pandas(frame, preserve_index=False), path, compression="lz4")
        part = ScratchPart(str(path), np.array(dropped, dtype=int))
        parts.append(part)
        frames.append(frame.loc[part.kept(rows)].reset_index(drop=True))
    return parts, frames


def test_a_group_is_the_kept_rows_of_the_partitions_it_spans_in_one_chunk(scratch):
    parts, frames = scratch
    pieces = [(parts[0], 90, 97), (parts[1], 0, 7), (parts[2], 0, 130)]
    group = scratch_rows(pieces)
    expected = pd.concat([frames[0].iloc[90:97], frames[1], frames[2].iloc[:130]], ignore_index=True)
    pd.testing.assert_frame_equal(group.to_pandas(), expected)
    assert group.schema.metadata is None
    assert all(column.num_chunks == 1 for column in group.columns)


def test_a_group_inside_one_partition_and_an_empty_group(scratch):
    parts, frames = scratch
    inside = scratch_rows([(parts[2], 40, 41)])
    pd.testing.assert_frame_equal(inside.to_pandas(), frames[2].iloc[40:41].reset_index(drop=True))
    empty = scratch_rows([(parts[0], 0, 0)])
    assert empty.num_rows == 0 and empty.schema.names == ["id", "x", "plan"]
