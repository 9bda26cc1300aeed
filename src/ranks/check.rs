//! The collective check before any job runs: every rank's arguments go to every rank in one
//! allgather, and every rank reaches the same verdict, so a mismatch fails everywhere instead of
//! hanging.

use super::link::{word, words_to_bytes, Link};
use super::RankMap;
use crate::status::{Error, Result, Status};

/// What each rank contributes.
const WORDS: usize = 10;
/// The first bytes of a rank's refusal travel with its arguments.
const REFUSAL_BYTES: usize = 512;
/// Marks a record of this protocol version (ranks running different sharedmem versions differ).
const MAGIC: u64 = 0x534d_5f4d_4150_0001;

/// What every rank learned about the map from the others.
pub struct Agreed {
    pub root: usize,
    /// What root passed: whether results travel, and whether per-worker results do.
    pub root_reduces: bool,
    pub root_worker_reduces: bool,
}

/// Gathers every rank's arguments and checks that they agree. The same Err on every rank when
/// they do not, when root is out of range, or when a rank refused (`refusal`).
pub fn agree(link: &Link, m: &RankMap, refusal: Option<&Error>) -> Result<Agreed> {
    let words = [
        MAGIC,
        m.root as i64 as u64,
        m.njobs,
        m.result_size as u64,
        m.has_opts as u64,
        m.options.wresult_size as u64,
        m.reduce.is_some() as u64,
        m.options.worker_reduce.is_some() as u64,
        refusal.is_some() as u64,
        refusal.map_or(0, |e| e.status as i32 as u64),
    ];
    let mut mine = words_to_bytes(&words);
    let mut text = refusal
        .map_or("", |e| e.message.as_str())
        .as_bytes()
        .to_vec();
    text.truncate(REFUSAL_BYTES);
    text.resize(REFUSAL_BYTES, 0);
    mine.extend_from_slice(&text);
    let all = link.allgather(&mine)?;
    let records: Vec<&[u8]> = all.chunks(mine.len()).collect();
    let field = |rank: usize, i: usize| word(records[rank], i);
    let call = m.call;
    let invalid = |what: String| Err(Error::invalid(format!("{call}: {what}")));
    if let Some(rank) = (0..records.len()).find(|&r| field(r, 0) != MAGIC) {
        return invalid(format!(
            "rank {rank} runs another version of sharedmem's sm_mpi_map; every rank must load \
             the same library"
        ));
    }
    let names = [
        (1, "root"),
        (2, "njobs"),
        (3, "result_size"),
        (4, "opts (NULL or not)"),
        (5, "opts->wresult_size"),
    ];
    for (i, name) in names {
        if (0..records.len()).any(|r| field(r, i) != field(0, i)) {
            let show = |v: u64| match i {
                1 => (v as i64).to_string(),
                4 => (if v == 1 { "given" } else { "NULL" }).to_string(),
                _ => v.to_string(),
            };
            return invalid(format!(
                "{name} differs between ranks: {}; every rank must pass the same root, njobs, \
                 result_size and options sizes",
                by_value(records.len(), |r| show(field(r, i)))
            ));
        }
    }
    let root = field(0, 1) as i64;
    if root < 0 || root >= records.len() as i64 {
        return invalid(format!(
            "root = {root} is not a rank of the communicator (it has {} ranks)",
            records.len()
        ));
    }
    let refused: Vec<String> = (0..records.len())
        .filter(|&r| field(r, 8) != 0)
        .map(|r| {
            let text = &records[r][WORDS * 8..];
            let end = text.iter().position(|&b| b == 0).unwrap_or(text.len());
            format!("rank {r}: {}", String::from_utf8_lossy(&text[..end]))
        })
        .collect();
    if let Some(first) = (0..records.len()).find(|&r| field(r, 8) != 0) {
        // The first refusing rank's status (SM_ERR_INVALID for bad arguments, SM_ERR_STATE for
        // a state MPI or the pool is in), and every refusal in the message.
        let status = Status::from_raw(field(first, 9) as i64).unwrap_or(Status::SM_ERR_STATE);
        return Err(Error::new(
            status,
            format!("{call}: {}", refused.join("; ")),
        ));
    }
    let root = root as usize;
    Ok(Agreed {
        root,
        root_reduces: field(root, 6) != 0,
        root_worker_reduces: field(root, 7) != 0,
    })
}

/// "1000 on ranks 0, 2, 3; 999 on rank 1": the ranks grouped by the value they passed.
pub(super) fn by_value(nranks: usize, value: impl Fn(usize) -> String) -> String {
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    for r in 0..nranks {
        let v = value(r);
        match groups.iter_mut().find(|(g, _)| *g == v) {
            Some((_, ranks)) => ranks.push(r),
            None => groups.push((v, vec![r])),
        }
    }
    groups
        .iter()
        .map(|(v, ranks)| {
            let list: Vec<String> = ranks.iter().map(|r| r.to_string()).collect();
            let noun = if ranks.len() == 1 { "rank" } else { "ranks" };
            format!("{v} on {noun} {}", list.join(", "))
        })
        .collect::<Vec<_>>()
        .join("; ")
}
