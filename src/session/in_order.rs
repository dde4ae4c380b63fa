//! Work on a stream of pieces, spread over the machine's cores, whose
//! results are used one at a time in the stream's order: encoding a
//! session's packets before they are written, decoding them before a run
//! is rebuilt from them. Encoding and decoding are most of what saving and
//! opening cost, and each piece is independent of the others.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind, resume_unwind};

/// Most helper threads: past this, writing or rebuilding in order (one
/// thread) is what takes the time.
const MOST_HELPERS: usize = 8;

/// Calls `work` on each of `pieces` on helper threads and `take` on each
/// result on the calling thread, in the pieces' order, so that `take` sees
/// exactly what a loop doing both would. At most two pieces per helper are
/// in flight, which bounds the memory held. The first error, of a piece or
/// of `take`, ends it, after the results of the pieces before it are taken
/// (their own errors come first, as in that loop). On one core there are
/// no helpers and it is that loop.
pub fn in_order<I, O, E>(
    pieces: impl Iterator<Item = Result<I, E>>,
    work: impl Fn(I) -> O + Sync,
    take: impl FnMut(O) -> Result<(), E>,
) -> Result<(), E>
where
    I: Send,
    O: Send,
{
    let helpers = std::thread::available_parallelism()
        .map_or(1, usize::from)
        .min(MOST_HELPERS);
    with_helpers(helpers, pieces, work, take)
}

fn with_helpers<I, O, E>(
    helpers: usize,
    mut pieces: impl Iterator<Item = Result<I, E>>,
    work: impl Fn(I) -> O + Sync,
    mut take: impl FnMut(O) -> Result<(), E>,
) -> Result<(), E>
where
    I: Send,
    O: Send,
{
    if helpers < 2 {
        return pieces.try_for_each(|piece| take(work(piece?)));
    }
    let ahead = 2 * helpers;
    std::thread::scope(|s| {
        let (to_do, jobs) = crossbeam_channel::bounded::<(usize, I)>(ahead);
        let (done, results) = crossbeam_channel::unbounded::<(usize, std::thread::Result<O>)>();
        for _ in 0..helpers {
            let (jobs, done, work) = (jobs.clone(), done.clone(), &work);
            s.spawn(move || {
                for (i, piece) in jobs {
                    // A panic goes back as the piece's result, to be raised
                    // on the calling thread in its turn (else it would wait
                    // for that result forever).
                    let out = catch_unwind(AssertUnwindSafe(|| work(piece)));
                    if done.send((i, out)).is_err() {
                        break;
                    }
                }
            });
        }
        drop((jobs, done));
        // Results that came back before those of earlier pieces.
        let mut early = BTreeMap::new();
        let (mut sent, mut taken) = (0, 0);
        // Takes the next result, waiting for it.
        let mut take_next = |taken: &mut usize| -> Result<(), E> {
            while !early.contains_key(taken) {
                let (i, out) = results
                    .recv()
                    .expect("helpers stay until every piece sent is done");
                early.insert(i, out);
            }
            let out = early.remove(taken).expect("just found");
            *taken += 1;
            take(out.unwrap_or_else(|panic| resume_unwind(panic)))
        };
        let mut failed = None;
        for piece in pieces {
            match piece {
                Ok(piece) => {
                    while sent - taken >= ahead {
                        take_next(&mut taken)?;
                    }
                    to_do
                        .send((sent, piece))
                        .expect("helpers outlive the pieces");
                    sent += 1;
                }
                Err(e) => {
                    failed = Some(e);
                    break;
                }
            }
        }
        drop(to_do);
        while taken < sent {
            take_next(&mut taken)?;
        }
        failed.map_or(Ok(()), Err)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn results_are_taken_in_order_however_the_helpers_finish() {
        for helpers in [1, 2, 5] {
            let mut seen = Vec::new();
            with_helpers::<u64, u64, ()>(
                helpers,
                (0..200u64).map(Ok),
                |i| {
                    // Earlier pieces take longer, so later ones finish first.
                    std::thread::sleep(std::time::Duration::from_micros((200 - i) % 7 * 50));
                    i * i
                },
                |out| {
                    seen.push(out);
                    Ok(())
                },
            )
            .unwrap();
            assert_eq!(
                seen,
                (0..200u64).map(|i| i * i).collect::<Vec<_>>(),
                "{helpers} helpers"
            );
        }
    }

    #[test]
    fn a_piece_that_panics_raises_its_panic_here_in_its_turn() {
        let mut seen = Vec::new();
        let raised = catch_unwind(AssertUnwindSafe(|| {
            with_helpers::<u32, u32, ()>(
                3,
                (0..50).map(Ok),
                |i| {
                    if i == 20 {
                        panic!("piece {i} broke")
                    } else {
                        i
                    }
                },
                |i| {
                    seen.push(i);
                    Ok(())
                },
            )
        }))
        .expect_err("the panic reaches the caller");
        assert_eq!(
            raised.downcast_ref::<String>().map(String::as_str),
            Some("piece 20 broke")
        );
        assert_eq!(seen, (0..20).collect::<Vec<_>>());
    }

    #[test]
    fn the_first_error_wins_and_what_came_before_it_is_taken() {
        // Pieces 0–99, of which piece 40 fails.
        let pieces = || {
            (0..100).map(|i| {
                if i == 40 {
                    Err(format!("piece {i}"))
                } else {
                    Ok(i)
                }
            })
        };
        for helpers in [1, 3] {
            // Everything before the failing piece is taken, nothing after.
            let mut seen = Vec::new();
            let got = with_helpers(
                helpers,
                pieces(),
                |i| i,
                |i| {
                    seen.push(i);
                    Ok(())
                },
            );
            assert_eq!(got, Err("piece 40".to_string()), "{helpers} helpers");
            assert_eq!(seen, (0..40).collect::<Vec<_>>(), "{helpers} helpers");
            // `take` failing earlier than a failing piece: its error is the one.
            let got = with_helpers(
                helpers,
                pieces(),
                |i| i,
                |i| {
                    if i == 10 {
                        Err(format!("took {i}"))
                    } else {
                        Ok(())
                    }
                },
            );
            assert_eq!(got, Err("took 10".to_string()), "{helpers} helpers");
        }
    }
}
