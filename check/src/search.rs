//! Porcupine's linearizability search: Wing & Gong's depth-first search with Lowe's memoization.
//!
//! Every op becomes two entries, its call and its return, in one doubly linked list sorted by time
//! (a call before a return at the same instant, so that touching ops count as concurrent). The
//! search walks the list from the front. At a call entry it tries to linearize that op now: if the
//! model accepts it from the current state, and the pair (set of linearized ops, new state) was
//! never reached before, it "lifts" the op's two entries out of the list, pushes a frame and
//! starts again from the front. Reaching a return entry means that op's deadline passed without
//! it being linearized, so the last choice was wrong: pop, put the entries back ("unlift") and try
//! the next call after the one popped.
//!
//! The memo set is what makes this practical (Lowe): two paths reaching the same ops with the same
//! state have the same future, so the second is cut. An op that never returned has its return at
//! +infinity: it can be linearized anywhere after its call.
//!
//! Refinements keep the search polynomial on the histories chaos tests produce. Each is safe
//! because it only cuts configurations whose futures another configuration's futures include:
//!
//! - Dominance. The memo also cuts a configuration when one already reached dominates it: same
//!   required ops linearized, no more optional ones, and a state that allows everything the new
//!   one does ([`Model::covers`]). If the dominating one led nowhere, neither can the new one; if
//!   it is still being explored (an ancestor, reached without the optional ops in between), its
//!   remaining branches include the new one's futures.
//! - Optional ops (the model's word for "may never have taken effect": unknown outcome, not seen
//!   by anyone) need not be linearized: the search succeeds once every other op is. An optional op
//!   is not linearized where it would change nothing, since leaving it pending (its return never
//!   comes) reaches everything that would. And at each point optional ops are tried only after
//!   the required ones: the configurations that leave them pending are then reached first, and
//!   dominance cuts the ones that take them.
//! - The caller may link an op to one that must precede it ([`Timed::after`]). For ops whose
//!   order the model fixes anyway (by revision) this only saves trying them out of place. For
//!   interchangeable optional ops (same effect from every state) it means "in call order only":
//!   any linearization using the later one first can use the earlier one there instead (it was
//!   called no later), so nothing is lost, and k pending twins give k + 1 choices, not 2^k.
//! - Once an op that leaves the state unchanged is linearized (a read at the key's current
//!   revision), no other choice at that point is tried: if a linearization exists from there, one
//!   exists that takes this op first, because moving an op that changes nothing to the front keeps
//!   every later step valid (the model's constraints on later ops are lower bounds that only this
//!   op could have raised) and breaks no real-time order (everything that returned before its call
//!   is already linearized). This keeps reads at one revision from being tried in every subset.

use std::collections::HashMap;
use std::hash::Hash;
use std::time::Instant;

use crate::bitset::Bitset;
use crate::hash::FxBuild;

/// A sequential specification: the states an op may lead to from a state.
pub(crate) trait Model {
    type State: Copy + Eq + Hash;
    type Op;
    /// Why an op does not fit a state; only used to explain a failure.
    type Reject;
    fn step(
        &self,
        state: &Self::State,
        op: &Self::Op,
    ) -> Result<Successors<Self::State>, Self::Reject>;
    /// Whether `op` may never have taken effect (its outcome is unknown and nothing shows that it
    /// did). The model must accept such an op in every state.
    fn optional(&self, op: &Self::Op) -> bool;
    /// The part of a state that [`Model::covers`] compares exactly: states are only compared for
    /// dominance within one skeleton.
    fn skeleton(&self, state: &Self::State) -> Self::State {
        *state
    }
    /// Whether `a` allows everything `b` does: every op `b` accepts, `a` accepts too, leading to
    /// states that cover `b`'s. Called only on states of one skeleton.
    fn covers(&self, a: &Self::State, b: &Self::State) -> bool {
        a == b
    }
}

/// The states an accepted op may lead to. Two when the op's effect is uncertain (say, whether a
/// revoke deleted the key); the second is tried when the first leads nowhere.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Successors<S> {
    One(S),
    Two(S, S),
}

/// An op with its real-time interval.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Timed<O> {
    pub(crate) call: u64,
    /// `u64::MAX`: it never returned.
    pub(crate) ret: u64,
    pub(crate) op: O,
    /// An op that must be linearized before this one: the caller's knowledge that every
    /// linearization (or, for interchangeable optional ops, one of every equivalent set) has
    /// them in that order. The op it names must be optional only if this one is.
    pub(crate) after: Option<usize>,
}

#[derive(Debug)]
pub(crate) enum Outcome<S> {
    Linearizable,
    Violation(DeadEnd<S>),
    TimedOut,
}

/// Where the deepest attempt got stuck: after linearizing `depth` required ops (the last ops
/// linearized are `recent`, oldest first) into `state`, the return of op `stuck` was reached with `stuck` not
/// linearized, and no alternative remained. `waiting` is set when `stuck` could not go next
/// because the op it must follow ([`Timed::after`]) was not linearized yet.
#[derive(Debug, Clone)]
pub(crate) struct DeadEnd<S> {
    pub(crate) depth: usize,
    pub(crate) recent: Vec<usize>,
    pub(crate) stuck: usize,
    pub(crate) waiting: Option<usize>,
    pub(crate) state: S,
}

/// How many of the last linearized ops a dead end remembers.
const RECENT: usize = 8;
/// How many search steps go by between two looks at the clock.
const CLOCK_EVERY: u64 = 1024;
const NONE: u32 = u32::MAX;

#[derive(Debug, Clone, Copy)]
struct Entry {
    op: u32,
    is_call: bool,
    prev: u32,
    next: u32,
    /// For a call, its return entry.
    partner: u32,
}

/// The entry list; entry 0 is the head sentinel.
struct List {
    entries: Vec<Entry>,
}

impl List {
    fn new<O>(ops: &[Timed<O>]) -> Self {
        let mut events: Vec<(u64, bool, u32)> = Vec::with_capacity(ops.len() * 2);
        for (i, op) in ops.iter().enumerate() {
            // `ops.len()` fits in u32: checked by `search`.
            let i = i as u32;
            events.push((op.call, false, i));
            events.push((op.ret, true, i));
        }
        events.sort_unstable();
        let mut entries = Vec::with_capacity(events.len() + 1);
        entries.push(Entry {
            op: NONE,
            is_call: false,
            prev: NONE,
            next: NONE,
            partner: NONE,
        });
        let mut call_of = vec![NONE; ops.len()];
        for (n, &(_, is_return, op)) in events.iter().enumerate() {
            let at = n as u32 + 1;
            entries[at as usize - 1].next = at;
            entries.push(Entry {
                op,
                is_call: !is_return,
                prev: at - 1,
                next: NONE,
                partner: NONE,
            });
            if is_return {
                entries[call_of[op as usize] as usize].partner = at;
            } else {
                call_of[op as usize] = at;
            }
        }
        List { entries }
    }

    fn first(&self) -> u32 {
        self.entries[0].next
    }

    fn unlink(&mut self, at: u32) {
        let Entry { prev, next, .. } = self.entries[at as usize];
        self.entries[prev as usize].next = next;
        if next != NONE {
            self.entries[next as usize].prev = prev;
        }
    }

    fn relink(&mut self, at: u32) {
        let Entry { prev, next, .. } = self.entries[at as usize];
        self.entries[prev as usize].next = at;
        if next != NONE {
            self.entries[next as usize].prev = at;
        }
    }

    /// Takes a call entry and its return out of the list.
    fn lift(&mut self, call: u32) {
        self.unlink(call);
        self.unlink(self.entries[call as usize].partner);
    }

    /// Undoes [`List::lift`]; valid because lifts are undone in reverse order.
    fn unlift(&mut self, call: u32) {
        self.relink(self.entries[call as usize].partner);
        self.relink(call);
    }
}

/// Where the scan of the entry list is. Each point is scanned twice: first for required ops,
/// then, if none fits, for optional ones. Trying optional ops last means the configurations that
/// leave them pending are reached first, and those dominate the ones that take them.
#[derive(Debug, Clone, Copy)]
struct Cursor {
    at: u32,
    optional_pass: bool,
}

impl Cursor {
    fn front(list: &List) -> Self {
        Cursor {
            at: list.first(),
            optional_pass: false,
        }
    }
}

/// A choice on the search stack: the call entry linearized, the state before it, and the other
/// successor state still to try.
struct Frame<S> {
    call: u32,
    before: S,
    alternative: Option<S>,
    /// The op left the state unchanged, so no other choice at this point needs trying.
    settled: bool,
}

/// The configurations reached, grouped by (required ops linearized, skeleton of the state), each
/// with the optional ops linearized and the state.
type Memo<S> = HashMap<(Bitset, S), Vec<(Bitset, S)>, FxBuild>;

struct Search<'m, M: Model> {
    model: &'m M,
    list: List,
    /// Per op, whether the model calls it optional, and its index among the required or the
    /// optional ops.
    optional: Vec<bool>,
    slot: Vec<usize>,
    /// The required and the optional ops linearized so far, by slot.
    required: Bitset,
    optionals: Bitset,
    memo: Memo<M::State>,
    stack: Vec<Frame<M::State>>,
    state: M::State,
    /// How many required ops are linearized.
    required_done: usize,
}

impl<M: Model> Search<'_, M> {
    fn is_linearized(&self, op: usize) -> bool {
        match self.optional[op] {
            true => self.optionals.contains(self.slot[op]),
            false => self.required.contains(self.slot[op]),
        }
    }

    fn mark(&mut self, op: usize, linearized: bool) {
        let (bits, slot) = match self.optional[op] {
            true => (&mut self.optionals, self.slot[op]),
            false => (&mut self.required, self.slot[op]),
        };
        match linearized {
            true => bits.set(slot),
            false => bits.clear(slot),
        }
        if !self.optional[op] {
            match linearized {
                true => self.required_done += 1,
                false => self.required_done -= 1,
            }
        }
    }

    /// Records the configuration reached by marking `op` with state `next`; false if one already
    /// reached dominates it (then nothing is recorded).
    fn remember(&mut self, next: M::State) -> bool {
        let key = (
            std::mem::take(&mut self.required),
            self.model.skeleton(&next),
        );
        let fresh = match self.memo.get_mut(&key) {
            Some(group) => {
                let dominated = group.iter().any(|(optionals, state)| {
                    optionals.is_subset(&self.optionals) && self.model.covers(state, &next)
                });
                if !dominated {
                    group.push((self.optionals.clone(), next));
                }
                !dominated
            }
            None => {
                let (required, skeleton) = key;
                self.memo.insert(
                    (required.clone(), skeleton),
                    vec![(self.optionals.clone(), next)],
                );
                self.required = required;
                return true;
            }
        };
        self.required = key.0;
        fresh
    }

    /// Linearizes the op of `call` into `next` unless a configuration already reached dominates
    /// that; true if it was done.
    fn advance(&mut self, call: u32, next: M::State, alternative: Option<M::State>) -> bool {
        let op = self.list.entries[call as usize].op as usize;
        if self.optional[op] && next == self.state {
            return false;
        }
        self.mark(op, true);
        if !self.remember(next) {
            self.mark(op, false);
            return false;
        }
        self.list.lift(call);
        let before = std::mem::replace(&mut self.state, next);
        self.stack.push(Frame {
            call,
            before,
            alternative,
            settled: alternative.is_none() && before == next,
        });
        true
    }

    /// Undoes the last choice and returns where to continue: the list's front if the choice had
    /// an untried alternative state, else the entry after the undone call, in the pass that
    /// took it. A settled choice has no alternatives worth trying, so the one before it is
    /// undone too. `None` when there is no choice left to undo.
    fn backtrack(&mut self) -> Option<Cursor> {
        loop {
            let frame = self.stack.pop()?;
            let op = self.list.entries[frame.call as usize].op as usize;
            self.state = frame.before;
            self.mark(op, false);
            self.list.unlift(frame.call);
            if let Some(alternative) = frame.alternative {
                if self.advance(frame.call, alternative, None) {
                    return Some(Cursor::front(&self.list));
                }
            }
            if !frame.settled {
                return Some(Cursor {
                    at: self.list.entries[frame.call as usize].next,
                    optional_pass: self.optional[op],
                });
            }
        }
    }

    fn dead_end(&self, stuck: u32, ops: &[Timed<M::Op>]) -> DeadEnd<M::State> {
        let from = self.stack.len().saturating_sub(RECENT);
        let stuck = self.list.entries[stuck as usize].op as usize;
        DeadEnd {
            depth: self.required_done,
            recent: self.stack[from..]
                .iter()
                .map(|f| self.list.entries[f.call as usize].op as usize)
                .collect(),
            stuck,
            waiting: ops[stuck]
                .after
                .filter(|&before| !self.is_linearized(before)),
            state: self.state,
        }
    }
}

/// Searches for a linearization of `ops` starting from `init`; gives up at `deadline`.
pub(crate) fn search<M: Model>(
    model: &M,
    init: M::State,
    ops: &[Timed<M::Op>],
    deadline: Option<Instant>,
) -> Outcome<M::State> {
    if ops.len() >= (u32::MAX / 2) as usize {
        // Entry numbers are u32; a history this large would not finish anyway.
        return Outcome::TimedOut;
    }
    let optional: Vec<bool> = ops.iter().map(|op| model.optional(&op.op)).collect();
    let mut counts = [0, 0];
    let slot = optional
        .iter()
        .map(|&optional| {
            let count = &mut counts[usize::from(optional)];
            *count += 1;
            *count - 1
        })
        .collect();
    let [required, optionals] = counts;
    let mut s = Search {
        model,
        list: List::new(ops),
        optional,
        slot,
        required: Bitset::new(required),
        optionals: Bitset::new(optionals),
        memo: Memo::default(),
        stack: Vec::new(),
        state: init,
        required_done: 0,
    };
    let mut deepest: Option<DeadEnd<M::State>> = None;
    let mut cursor = Cursor::front(&s.list);
    let mut clock_in = CLOCK_EVERY;
    while s.required_done < required {
        clock_in -= 1;
        if clock_in == 0 {
            clock_in = CLOCK_EVERY;
            if deadline.is_some_and(|d| Instant::now() >= d) {
                return Outcome::TimedOut;
            }
        }
        // `at` is never past the end: while a required op is not linearized, its return entry is
        // still in the list, and reaching it ends the pass.
        let at = cursor.at;
        let entry = s.list.entries[at as usize];
        let op = entry.op as usize;
        if entry.is_call {
            let in_pass = s.optional[op] == cursor.optional_pass;
            let waits = ops[op].after.is_some_and(|before| !s.is_linearized(before));
            let linearized = in_pass
                && !waits
                && match s.model.step(&s.state, &ops[op].op) {
                    Ok(Successors::One(next)) => s.advance(at, next, None),
                    Ok(Successors::Two(first, second)) => {
                        s.advance(at, first, Some(second)) || s.advance(at, second, None)
                    }
                    Err(_) => false,
                };
            cursor = match linearized {
                true => Cursor::front(&s.list),
                false => Cursor {
                    at: entry.next,
                    ..cursor
                },
            };
            continue;
        }
        // A return entry. An optional op has no deadline (it may never happen): pass it.
        if s.optional[op] {
            cursor.at = entry.next;
            continue;
        }
        // A required op's deadline: no required op fits here; try the optional ones.
        if !cursor.optional_pass {
            cursor = Cursor {
                at: s.list.first(),
                optional_pass: true,
            };
            continue;
        }
        // Nothing fits before this op's deadline. Remember the deepest such point.
        let dead_end = match deepest.take() {
            // Deepest by required ops, so that of two equally deep the one taking fewer optional
            // ops, reached first, is kept: its state is the plainer explanation.
            Some(d) if d.depth >= s.required_done => d,
            _ => s.dead_end(at, ops),
        };
        match s.backtrack() {
            Some(next) => {
                deepest = Some(dead_end);
                cursor = next;
            }
            None => return Outcome::Violation(dead_end),
        }
    }
    Outcome::Linearizable
}

#[cfg(test)]
#[path = "search_test.rs"]
mod tests;
