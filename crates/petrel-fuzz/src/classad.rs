//! ClassAd text (new and old syntax) and ClassAd JSON: ads arrive in submits, queries,
//! constraints and the queue's own files, and are printed back in each syntax.

use std::sync::OnceLock;

use petrel_classad::{
    eval, json, parse_classad, parse_expr, parser::old_syntax, unparse, unparse_value, ClassAd,
    Expr, Value,
};

/// An ad to evaluate expressions against: attributes of every kind, a nested ad and a
/// self-reference, so that lookups, scoping and the recursion limit are all reached.
fn context() -> &'static ClassAd {
    static AD: OnceLock<ClassAd> = OnceLock::new();
    AD.get_or_init(|| {
        parse_classad(
            "[ a = 1; b = \"s\"; r = 2.5; t = true; l = {1, \"x\", {2}}; n = [x = a; y = n.x]; \
             self_ref = self_ref + 1; u = undefined; e = error ]",
        )
        .expect("the context ad parses")
    })
}

/// Whether evaluating `text` can give a different value each time (the clock, random).
fn varies(text: &str) -> bool {
    let t = text.to_ascii_lowercase();
    t.contains("time") || t.contains("random")
}

/// The same value, by its printed form (so that NaN equals NaN and errors compare).
fn same_value(a: &Value, b: &Value) -> bool {
    unparse_value(a) == unparse_value(b)
}

/// The printed form of a parsed expression parses back to one that means the same, and
/// printing settles: the queue stores expressions as printed and reads them back after
/// a restart. As in HTCondor, a minus reads back folded into the number after it (`- 1`
/// prints as ` -1`, which reads back as the literal `-1`; ` -0` reads back as `0`), so
/// each printing may drop one unary minus (`---0` settles in three); nothing else may
/// change.
fn check_expr(e: &Expr) {
    let printed = unparse(e);
    let v = eval(e);
    let _ = context().eval(e);
    let mut now = printed.clone();
    let mut rounds = 0;
    loop {
        let again = parse_expr(&now)
            .unwrap_or_else(|err| panic!("printed expression {now:?} does not parse: {err}"));
        if !varies(&printed) {
            let w = eval(&again);
            assert!(
                same_value(&v, &w),
                "{now:?} evaluates to {} but its source to {}",
                unparse_value(&w),
                unparse_value(&v)
            );
        }
        let next = unparse(&again);
        if next == now {
            break;
        }
        rounds += 1;
        assert!(
            rounds <= 1 + printed.matches('-').count() && next.len() <= now.len(),
            "printing does not settle: {now:?} then {next:?}"
        );
        now = next;
    }
}

/// Printed text parses back, and printing what was parsed settles: each round may fold
/// one unary minus into the number after it (see `check_expr`); nothing else may change.
fn printing_settles<T>(
    syntax: &str,
    first: &str,
    parse: &impl Fn(&str) -> petrel_classad::Result<T>,
    print: &impl Fn(&T) -> String,
) {
    let mut now = first.to_string();
    let mut rounds = 0;
    loop {
        let back =
            parse(&now).unwrap_or_else(|err| panic!("{syntax} {now:?} does not parse: {err}"));
        let next = print(&back);
        if next == now {
            break;
        }
        rounds += 1;
        assert!(
            rounds <= 1 + first.matches('-').count() && next.len() <= now.len(),
            "{syntax} printing does not settle: {now:?} then {next:?}"
        );
        now = next;
    }
}

/// Every printed form of an ad parses back, and printing settles.
fn check_ad(ad: &ClassAd) {
    fn settles(
        ad: &ClassAd,
        syntax: &str,
        print: impl Fn(&ClassAd) -> String,
        parse: impl Fn(&str) -> petrel_classad::Result<ClassAd>,
    ) {
        let first = print(ad);
        let back = parse(&first)
            .unwrap_or_else(|err| panic!("{syntax} ad {first:?} does not parse: {err}"));
        printing_settles(syntax, &first, &parse, &print);
        if !varies(&first) {
            for (name, _) in ad.iter() {
                let (a, b) = (ad.eval_attr(name), back.eval_attr(name));
                assert!(
                    same_value(&a, &b),
                    "{syntax}: {name} is {} in {first:?} but {} in the ad it was printed from",
                    unparse_value(&b),
                    unparse_value(&a)
                );
            }
        }
    }
    // Old syntax, as in HTCondor, has no quoted attribute names ('a b', 'true') and no
    // escapes, so a string holding a line break has no one-line form: such ads have no
    // old-syntax form to check (the pool refuses such names at submit; for such strings
    // see fuzz/open/classad_text).
    let plain = ad
        .iter()
        .all(|(name, _)| petrel_classad::unparse::unparse_name(name) == name)
        && ad.to_old_syntax().lines().count() == ad.len();
    if plain {
        settles(
            ad,
            "old-syntax",
            ClassAd::to_old_syntax,
            old_syntax::parse_old_classad,
        );
    }
    settles(ad, "new-syntax", ClassAd::to_new_syntax, parse_classad);
    settles(ad, "JSON", ClassAd::to_json, json::ad_from_json);
}

/// ClassAd text: an expression, a new-syntax ad, an old-syntax ad.
pub fn classad_text(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(e) = parse_expr(text) {
        check_expr(&e);
    }
    if let Ok(ad) = parse_classad(text) {
        check_ad(&ad);
    }
    if let Ok(ad) = old_syntax::parse_old_classad(text) {
        check_ad(&ad);
    }
    let _ = old_syntax::parse_old_classads(text);
}

/// ClassAd JSON, one ad or a list.
pub fn classad_json(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(ad) = json::ad_from_json(text) {
        check_ad(&ad);
    }
    if let Ok(ads) = json::ads_from_json(text) {
        printing_settles(
            "JSON ads",
            &json::ads_to_json(&ads),
            &json::ads_from_json,
            &|ads: &Vec<ClassAd>| json::ads_to_json(ads),
        );
    }
}
