//! `loadavg`: the 1, 5 and 15 minute load averages from `/proc/loadavg` (node_exporter's
//! `node_load1`, `node_load5`, `node_load15`).

#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct LoadAvg {
    pub one: f64,
    pub five: f64,
    pub fifteen: f64,
}

/// Parses `/proc/loadavg`: `6.58 3.78 2.30 7/131 17530`.
pub fn parse(text: &str) -> Option<LoadAvg> {
    let mut f = text.split_whitespace().map(|v| v.parse::<f64>().ok());
    Some(LoadAvg {
        one: f.next()??,
        five: f.next()??,
        fifteen: f.next()??,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_three_averages() {
        assert_eq!(
            parse("6.58 3.78 2.30 7/131 17530\n"),
            Some(LoadAvg {
                one: 6.58,
                five: 3.78,
                fifteen: 2.30
            })
        );
        assert_eq!(parse("6.58 x"), None);
    }
}
