//! Times as the chat page shows them: `HH:MM` beside each line, and the
//! full UTC time in its `datetime` attribute. Plain arithmetic on
//! milliseconds since the Unix epoch, so the server and the browser render
//! the same text until hydration switches the clock to local time.

use crate::hydrated::is_hydrated;

/// `2026-11-25T15:04:05Z`, for the `datetime` attribute.
pub fn iso_time(ms: u64) -> String {
    let secs = ms / 1000;
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (y, m, d) = civil_from_days(days as i64);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Gregorian date of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (era * 400 + yoe + if m <= 2 { 1 } else { 0 }, m, d)
}

/// `HH:MM`: in UTC on the server, in the reader's time zone once hydrated.
pub fn clock(ms: u64) -> String {
    if is_hydrated() {
        if let Some(local) = local_clock(ms) {
            return local;
        }
    }
    let secs = ms / 1000 % 86_400;
    format!("{:02}:{:02}", secs / 3600, secs % 3600 / 60)
}

/// `HH:MM` in the browser's time zone.
#[cfg(feature = "hydrate")]
fn local_clock(ms: u64) -> Option<String> {
    let date = js_sys::Date::new(&wasm_bindgen::JsValue::from_f64(ms as f64));
    Some(format!("{:02}:{:02}", date.get_hours(), date.get_minutes()))
}

/// The server has no reader's time zone: UTC it is.
#[cfg(not(feature = "hydrate"))]
fn local_clock(_ms: u64) -> Option<String> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_utc_until_hydrated() {
        assert_eq!(iso_time(0), "1970-01-01T00:00:00Z");
        // 2024-02-29 (a leap day) 23:59:59.999 UTC.
        assert_eq!(iso_time(1_709_251_199_999), "2024-02-29T23:59:59Z");
        assert_eq!(civil_from_days(-1), (1969, 12, 31));
        assert_eq!(clock(1_709_251_199_999), "23:59");
    }
}
