//! sm_mpi_argsort and sm_mpi_permute without MPI: ranks as threads over the in-process transport
//! of tests.rs, checked against `sm_argsort` of the concatenated keys (itself checked against
//! numpy elsewhere: tests/c/argsort_numpy.py; the MPI tests compare with numpy directly).

use super::sort::{argsort, permute, RankArgsort, RankPermute};
use super::tests::{on_ranks, outcome};
use crate::sort::{self, Dtype};
use crate::status::{Error, Status};

fn lcg(seed: &mut u64) -> u64 {
    *seed = seed
        .wrapping_mul(6364136223846793005)
        .wrapping_add(1442695040888963407);
    *seed >> 33
}

/// Every rank's keys as raw bytes of `dtype`.
fn split_bytes(all: &[u8], dtype: Dtype, counts: &[usize]) -> Vec<Vec<u8>> {
    let mut at = 0;
    counts
        .iter()
        .map(|&c| {
            let part = all[at..at + c * dtype.size()].to_vec();
            at += c * dtype.size();
            part
        })
        .collect()
}

fn reference(all: &[u8], dtype: Dtype) -> Vec<i64> {
    let n = all.len() / dtype.size();
    let mut out = vec![0i64; n];
    // SAFETY: all holds n keys of dtype; out n indices.
    unsafe { sort::argsort(all.as_ptr(), n, dtype, out.as_mut_ptr(), 1) }.unwrap();
    out
}

/// Runs sm_mpi_argsort on `counts.len()` ranks and checks the concatenated outputs.
fn check(all: &[u8], dtype: Dtype, counts: &[usize], threads: usize, what: &str) {
    let parts = split_bytes(all, dtype, counts);
    let outs = on_ranks(counts.len(), &[], |rank, t| {
        let mut out = vec![-1i64; counts[rank]];
        let got = argsort(
            t,
            &RankArgsort {
                call: "sm_mpi_argsort",
                threads: Ok(threads),
                keys: parts[rank].as_ptr(),
                n: counts[rank],
                dtype_raw: 0,
                dtype: Ok(dtype),
                out: out.as_mut_ptr(),
            },
        );
        (outcome(got), out)
    });
    let mut joined = Vec::new();
    for (rank, ((status, msg), out)) in outs.into_iter().enumerate() {
        assert_eq!(status, Status::SM_OK, "{what}: rank {rank}: {msg}");
        joined.extend(out);
    }
    assert_eq!(joined, reference(all, dtype), "{what}, counts {counts:?}");
}

fn bytes_of<T: Copy>(v: &[T]) -> Vec<u8> {
    // SAFETY: plain numbers, read as bytes.
    unsafe { std::slice::from_raw_parts(v.as_ptr().cast::<u8>(), std::mem::size_of_val(v)) }
        .to_vec()
}

#[test]
fn every_distribution_of_keys_over_uneven_and_empty_ranks() {
    let mut seed = 11;
    let n = 40_000;
    let uniform: Vec<f64> = (0..n).map(|_| lcg(&mut seed) as f64 / 7.0 - 1e8).collect();
    let mut sorted = uniform.clone();
    sorted.sort_by(|a, b| a.partial_cmp(b).unwrap());
    let reversed: Vec<f64> = sorted.iter().rev().copied().collect();
    let skewed: Vec<f64> = uniform
        .iter()
        .map(|x| (x.abs() / 1e8 * 20.0).exp().floor())
        .collect();
    let equal = vec![3.5f64; n];
    let few: Vec<f64> = (0..n).map(|_| (lcg(&mut seed) % 3) as f64).collect();
    let specials: Vec<f64> = (0..n)
        .map(|_| match lcg(&mut seed) % 7 {
            0 => f64::NAN,
            1 => -0.0,
            2 => 0.0,
            3 => f64::INFINITY,
            4 => f64::NEG_INFINITY,
            _ => (lcg(&mut seed) % 10) as f64 - 5.0,
        })
        .collect();
    let layouts: [&[usize]; 5] = [
        &[n],
        &[n / 2, n / 2],
        &[n - 1000, 0, 1000],
        &[0, n, 0, 0],
        &[7, n - 7 - 20_000, 0, 20_000],
    ];
    for (name, keys) in [
        ("uniform", &uniform),
        ("sorted", &sorted),
        ("reversed", &reversed),
        ("skewed", &skewed),
        ("all equal", &equal),
        ("few distinct", &few),
        ("NaN, inf, -0.0", &specials),
    ] {
        for counts in layouts {
            check(&bytes_of(keys), Dtype::F64, counts, 2, name);
        }
    }
}

#[test]
fn every_dtype() {
    let mut seed = 5;
    let n = 3000;
    let counts = [1000, 0, 1500, 500];
    let raw: Vec<u64> = (0..n)
        .map(|_| lcg(&mut seed) ^ (lcg(&mut seed) << 31))
        .collect();
    for dtype in [
        Dtype::F64,
        Dtype::F32,
        Dtype::I64,
        Dtype::I32,
        Dtype::I16,
        Dtype::I8,
        Dtype::U64,
        Dtype::U32,
        Dtype::U16,
        Dtype::U8,
    ] {
        // The low bytes of random words: every bit pattern (NaNs included for floats).
        let all: Vec<u8> = raw
            .iter()
            .flat_map(|w| w.to_le_bytes()[..dtype.size()].to_vec())
            .collect();
        check(&all, dtype, &counts, 3, &format!("{dtype:?}"));
    }
}

#[test]
fn large_enough_for_threads_in_every_phase() {
    let mut seed = 17;
    let n = 400_000;
    let keys: Vec<i64> = (0..n).map(|_| (lcg(&mut seed) % 100_000) as i64).collect();
    check(
        &bytes_of(&keys),
        Dtype::I64,
        &[150_000, 50_000, 200_000],
        2,
        "i64",
    );
}

/// Runs sm_mpi_argsort on every rank with its own arguments; returns every rank's outcome.
fn statuses(
    counts: &[usize],
    dtypes: &[Dtype],
    null_keys: Option<usize>,
    refusals: &[Option<&'static str>],
) -> Vec<(Status, String)> {
    on_ranks(counts.len(), refusals, |rank, t| {
        let keys = vec![0u8; counts[rank] * 8];
        let mut out = vec![0i64; counts[rank]];
        outcome(argsort(
            t,
            &RankArgsort {
                call: "sm_mpi_argsort",
                threads: Ok(2),
                keys: if null_keys == Some(rank) {
                    std::ptr::null()
                } else {
                    keys.as_ptr()
                },
                n: counts[rank],
                dtype_raw: dtypes[rank] as i32,
                dtype: Ok(dtypes[rank]),
                out: out.as_mut_ptr(),
            },
        ))
    })
}

#[test]
fn bad_arguments_on_one_rank_fail_every_rank() {
    let same = [Dtype::F64; 3];
    let got = statuses(&[4, 4, 4], &[Dtype::F64, Dtype::I32, Dtype::F64], None, &[]);
    for (s, m) in &got {
        assert_eq!(*s, Status::SM_ERR_INVALID, "{m}");
        assert!(m.contains("dtype differs between ranks"), "{m}");
        assert!(m.contains("on rank 1"), "{m}");
    }
    let got = statuses(&[4, 4, 4], &same, Some(2), &[]);
    for (s, m) in &got {
        assert_eq!(*s, Status::SM_ERR_INVALID, "{m}");
        assert!(m.contains("rank 2: keys is NULL with nlocal = 4"), "{m}");
    }
    // A NULL keys with nlocal = 0 is fine.
    let got = statuses(&[4, 0, 4], &same, Some(1), &[]);
    assert!(got.iter().all(|(s, _)| *s == Status::SM_OK), "{got:?}");
    let got = statuses(
        &[4, 4, 4],
        &same,
        None,
        &[None, Some("the thread level is too low")],
    );
    for (s, m) in &got {
        assert_eq!(*s, Status::SM_ERR_STATE, "{m}");
        assert!(m.contains("rank 1: the thread level is too low"), "{m}");
    }
    let got = on_ranks(2, &[], |rank, t| {
        let keys = [1.0f64, 2.0];
        let mut out = [0i64; 2];
        outcome(argsort(
            t,
            &RankArgsort {
                call: "sm_mpi_argsort",
                threads: if rank == 0 {
                    Err(Error::invalid("pool is not a live pool"))
                } else {
                    Ok(1)
                },
                keys: keys.as_ptr().cast(),
                n: 2,
                dtype_raw: 99,
                dtype: Ok(Dtype::F64),
                out: out.as_mut_ptr(),
            },
        ))
    });
    for (s, m) in &got {
        assert_eq!(*s, Status::SM_ERR_INVALID, "{m}");
        assert!(m.contains("rank 0: pool is not a live pool"), "{m}");
    }
}

/// sm_mpi_permute of `src` (u32 items plus a tag byte: itemsize 5) with per-rank `index`.
fn run_permute(counts: &[usize], index: &[Vec<i64>]) -> Vec<((Status, String), Vec<u8>)> {
    let item = |g: usize| -> [u8; 5] {
        let w = (g as u32).wrapping_mul(2654435761).to_le_bytes();
        [w[0], w[1], w[2], w[3], (g % 251) as u8]
    };
    let mut offset = 0;
    let srcs: Vec<Vec<u8>> = counts
        .iter()
        .map(|&c| {
            let v: Vec<u8> = (offset..offset + c).flat_map(item).collect();
            offset += c;
            v
        })
        .collect();
    on_ranks(counts.len(), &[], |rank, t| {
        let mut dst = vec![0u8; index[rank].len() * 5];
        let got = permute(
            t,
            &RankPermute {
                call: "sm_mpi_permute",
                threads: Ok(2),
                src: srcs[rank].as_ptr(),
                n: counts[rank],
                itemsize: 5,
                index: index[rank].as_ptr(),
                nout: index[rank].len(),
                dst: dst.as_mut_ptr(),
            },
        );
        (outcome(got), dst)
    })
}

#[test]
fn permute_gathers_by_global_index() {
    let mut seed = 3;
    let counts = [300usize, 0, 5000, 1200];
    let total: usize = counts.iter().sum();
    let index: Vec<Vec<i64>> = [70_000usize, 10, 0, 999]
        .iter()
        .map(|&m| {
            (0..m)
                .map(|_| (lcg(&mut seed) % total as u64) as i64)
                .collect()
        })
        .collect();
    let got = run_permute(&counts, &index);
    for (rank, ((s, m), dst)) in got.iter().enumerate() {
        assert_eq!(*s, Status::SM_OK, "{m}");
        for (i, &g) in index[rank].iter().enumerate() {
            let w = (g as u32).wrapping_mul(2654435761).to_le_bytes();
            assert_eq!(&dst[i * 5..i * 5 + 4], &w, "rank {rank} item {i}");
            assert_eq!(dst[i * 5 + 4], (g % 251) as u8);
        }
    }
}

#[test]
fn an_index_out_of_range_fails_every_rank() {
    let index = vec![vec![0i64, 1], vec![2, 6], vec![-1]];
    let got = run_permute(&[2, 2, 2], &index);
    for ((s, m), _) in &got {
        assert_eq!(*s, Status::SM_ERR_INVALID, "{m}");
        assert!(
            m.contains("rank 1: index[1] = 6 is outside [0, 6)")
                && m.contains("rank 2: index[0] = -1"),
            "{m}"
        );
    }
}

#[test]
fn many_ranks_use_fewer_samples_per_round_and_stay_exact() {
    // 16 samples and pivots per target up to 16 ranks; 12 at 20 ranks; 1 (the weighted median)
    // from 129 ranks on (256 / nranks).
    let mut seed = 23;
    for nranks in [20usize, 130] {
        let counts: Vec<usize> = (0..nranks)
            .map(|r| {
                if r % 7 == 3 {
                    0
                } else {
                    (lcg(&mut seed) % 40) as usize
                }
            })
            .collect();
        let total: usize = counts.iter().sum();
        let keys: Vec<i16> = (0..total).map(|_| (lcg(&mut seed) % 50) as i16).collect();
        check(
            &bytes_of(&keys),
            Dtype::I16,
            &counts,
            1,
            &format!("{nranks} ranks"),
        );
    }
}

#[test]
fn ranks_making_different_calls_fail_every_rank() {
    let got = on_ranks(2, &[], |rank, t| {
        let keys = [2.0f64, 1.0];
        let mut out = [0i64; 2];
        let index = [0i64, 1];
        outcome(if rank == 0 {
            argsort(
                t,
                &RankArgsort {
                    call: "sm_mpi_argsort",
                    threads: Ok(1),
                    keys: keys.as_ptr().cast(),
                    n: 2,
                    dtype_raw: 0,
                    dtype: Ok(Dtype::F64),
                    out: out.as_mut_ptr(),
                },
            )
        } else {
            permute(
                t,
                &RankPermute {
                    call: "sm_mpi_permute",
                    threads: Ok(1),
                    src: keys.as_ptr().cast(),
                    n: 2,
                    itemsize: 8,
                    index: index.as_ptr(),
                    nout: 2,
                    dst: out.as_mut_ptr().cast(),
                },
            )
        })
    });
    for (s, m) in &got {
        assert_eq!(*s, Status::SM_ERR_INVALID, "{m}");
        assert!(
            m.contains("the ranks make different calls: sm_mpi_argsort on rank 0; sm_mpi_permute on rank 1"),
            "{m}"
        );
    }
}
