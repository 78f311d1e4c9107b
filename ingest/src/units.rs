//! Units as sources write them, converted to the canonical UCUM unit of a stream column.

/// A linear conversion to a canonical unit: `canonical = value * factor + offset`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct Conversion {
    pub factor: f64,
    pub offset: f64,
}

impl Conversion {
    const IDENTITY: Conversion = Conversion {
        factor: 1.0,
        offset: 0.0,
    };

    pub(crate) fn is_identity(&self) -> bool {
        *self == Conversion::IDENTITY
    }

    pub(crate) fn apply(&self, value: f64) -> f64 {
        value * self.factor + self.offset
    }
}

/// The UCUM code a source's spelling of a unit stands for.
fn normalize(unit: &str) -> String {
    let unit = unit.trim();
    let lower = unit.to_ascii_lowercase();
    let code = match lower.as_str() {
        "lb" | "lbs" | "pound" | "pounds" | "[lb_av]" => "[lb_av]",
        "kg" | "kilogram" | "kilograms" => "kg",
        "g" | "gram" | "grams" => "g",
        "mg" => "mg",
        "oz" | "[oz_av]" => "[oz_av]",
        "st" | "stone" | "[stone_av]" => "[stone_av]",
        "kcal" | "cal" | "calorie" | "calories" | "kilocalorie" | "kilocalories" => "kcal",
        "kj" | "kilojoule" | "kilojoules" => "kJ",
        "mmol/l" | "mmol/liter" => "mmol/L",
        "mg/dl" | "mg/100ml" => "mg/dL",
        "m" | "meter" | "meters" | "metre" | "metres" => "m",
        "km" | "kilometer" | "kilometers" => "km",
        "mi" | "mile" | "miles" | "[mi_i]" => "[mi_i]",
        "ft" | "feet" | "[ft_i]" => "[ft_i]",
        "cm" => "cm",
        "in" | "inch" | "inches" | "[in_i]" => "[in_i]",
        "m/s" => "m/s",
        "km/h" | "kph" | "km/hr" => "km/h",
        "mph" | "[mi_i]/h" => "[mi_i]/h",
        "/min" | "bpm" | "count/min" | "beats/min" | "{beats}/min" | "1/min" | "rpm" | "spm" => {
            "/min"
        }
        "ms" | "millisecond" | "milliseconds" => "ms",
        "s" | "sec" | "second" | "seconds" => "s",
        "%" | "percent" | "pct" => "%",
        "mmhg" | "mm[hg]" => "mm[Hg]",
        "cel" | "°c" | "degc" | "c" => "Cel",
        "[degf]" | "°f" | "degf" | "f" => "[degF]",
        "kg/m2" | "kg/m^2" | "kg/m²" => "kg/m2",
        "w" | "watt" | "watts" => "W",
        "deg" | "degree" | "degrees" | "°" => "deg",
        "{steps}" | "steps" | "count" | "{count}" => "{steps}",
        _ => return unit.to_owned(),
    };
    code.to_owned()
}

/// The conversion from `from` to `canonical`, or why there is none.
pub(crate) fn conversion(from: &str, canonical: &str) -> Result<Conversion, String> {
    let from = normalize(from);
    let to = normalize(canonical);
    if from == to {
        return Ok(Conversion::IDENTITY);
    }
    let factor = |factor| {
        Ok(Conversion {
            factor,
            offset: 0.0,
        })
    };
    match (from.as_str(), to.as_str()) {
        ("[lb_av]", "kg") => factor(0.453_592_37),
        ("[oz_av]", "kg") => factor(0.028_349_523_125),
        ("[stone_av]", "kg") => factor(6.350_293_18),
        ("g", "kg") => factor(0.001),
        ("kg", "g") => factor(1000.0),
        ("mg", "g") => factor(0.001),
        ("[oz_av]", "g") => factor(28.349_523_125),
        ("g", "mg") => factor(1000.0),
        ("kJ", "kcal") => factor(1.0 / 4.184),
        // Glucose: 1 mmol/L is 18.016 mg/dL (molar mass 180.16 g/mol).
        ("mg/dL", "mmol/L") => factor(1.0 / 18.016),
        ("km", "m") => factor(1000.0),
        ("[mi_i]", "m") => factor(1609.344),
        ("[ft_i]", "m") => factor(0.3048),
        ("cm", "m") => factor(0.01),
        ("km/h", "m/s") => factor(1.0 / 3.6),
        ("[mi_i]/h", "m/s") => factor(0.447_04),
        ("s", "ms") => factor(1000.0),
        ("[degF]", "Cel") => Ok(Conversion {
            factor: 5.0 / 9.0,
            offset: -32.0 * 5.0 / 9.0,
        }),
        (from, to) => Err(format!("cannot convert {from} to {to}")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn convert(value: f64, from: &str, to: &str) -> f64 {
        conversion(from, to).unwrap().apply(value)
    }

    #[test]
    fn common_units_reach_the_canonical_ones() {
        assert!((convert(150.0, "lb", "kg") - 68.038_855_5).abs() < 1e-6);
        assert!((convert(150.0, "[lb_av]", "kg") - 68.038_855_5).abs() < 1e-6);
        assert!((convert(418.4, "kJ", "kcal") - 100.0).abs() < 1e-9);
        assert!((convert(90.0, "mg/dL", "mmol/L") - 4.995_559).abs() < 1e-5);
        assert!((convert(98.6, "°F", "Cel") - 37.0).abs() < 1e-9);
        assert!((convert(3.6, "km/h", "m/s") - 1.0).abs() < 1e-12);
        assert_eq!(convert(72.0, "bpm", "/min"), 72.0);
        assert!(conversion("count/min", "/min").unwrap().is_identity());
    }

    #[test]
    fn impossible_conversions_say_so() {
        assert_eq!(
            conversion("kg", "mmol/L").unwrap_err(),
            "cannot convert kg to mmol/L"
        );
        assert!(conversion("furlongs", "m").is_err());
    }
}
