//! Sharing of identical attribute expressions between ads.
//!
//! A pool holds thousands of ads whose `Requirements`, `Rank` and similar
//! expressions are textually identical. The parser hands every non-literal
//! attribute expression to [`intern`], keyed by its source text (and the
//! string-escape mode), and gets back one shared tree: less memory, and
//! matchmaking walks a tree that stays in cache. The table holds weak
//! references, so trees die with the last ad using them.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, PoisonError, Weak};

use crate::ast::Expr;

/// Texts longer than this are not interned (they are rarely repeated).
const MAX_KEY: usize = 4096;

struct Table {
    map: HashMap<(bool, Box<str>), Weak<Expr>>,
    inserts_since_sweep: usize,
}

static TABLE: Mutex<Option<Table>> = Mutex::new(None);

/// The shared tree for `text` (parsed as `expr`), creating it if needed.
pub(crate) fn intern(old_strings: bool, text: &str, expr: Expr) -> Arc<Expr> {
    let text = text.trim();
    if text.is_empty() || text.len() > MAX_KEY {
        return Arc::new(expr);
    }
    let mut guard = TABLE.lock().unwrap_or_else(PoisonError::into_inner);
    let table = guard.get_or_insert_with(|| Table {
        map: HashMap::new(),
        inserts_since_sweep: 0,
    });
    let key = (old_strings, Box::<str>::from(text));
    if let Some(shared) = table.map.get(&key).and_then(Weak::upgrade) {
        // Same text, same parse: reuse (the trees are equal by construction).
        return shared;
    }
    let shared = Arc::new(expr);
    table.map.insert(key, Arc::downgrade(&shared));
    table.inserts_since_sweep += 1;
    if table.inserts_since_sweep > 4096 && table.inserts_since_sweep > table.map.len() / 2 {
        table.map.retain(|_, w| w.strong_count() > 0);
        table.inserts_since_sweep = 0;
    }
    shared
}
