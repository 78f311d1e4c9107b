//! Names from the FIT profile's vocabularies: sports, manufacturers, Garmin products. Only
//! the values the reader turns into text are listed; the numbers are the profile's.

/// The `sport` of a workout, in the vocabulary the Apple Health reader uses (`run`, `ride`,
/// `walk`, `swim`, `strength`), else the profile's own name of the sport (`hiking`,
/// `cross_country_skiing`); a number the profile does not name becomes `sport_<n>`.
pub(super) fn sport(sport: Option<i64>, sub_sport: Option<i64>) -> Option<String> {
    const STRENGTH_TRAINING: i64 = 20;
    const YOGA: i64 = 43;
    const PILATES: i64 = 44;
    let sport = sport?;
    let name = match (sport, sub_sport) {
        (1, _) => "run",
        (2, _) => "ride",
        (5, _) => "swim",
        (11, _) => "walk",
        (10, Some(STRENGTH_TRAINING)) => "strength",
        (10, Some(YOGA)) => "yoga",
        (10, Some(PILATES)) => "pilates",
        (0, _) => "generic",
        (3, _) => "transition",
        (4, _) => "fitness_equipment",
        (6, _) => "basketball",
        (7, _) => "soccer",
        (8, _) => "tennis",
        (9, _) => "american_football",
        (10, _) => "training",
        (12, _) => "cross_country_skiing",
        (13, _) => "alpine_skiing",
        (14, _) => "snowboarding",
        (15, _) => "rowing",
        (16, _) => "mountaineering",
        (17, _) => "hiking",
        (18, _) => "multisport",
        (19, _) => "paddling",
        (20, _) => "flying",
        (21, _) => "e_biking",
        (22, _) => "motorcycling",
        (23, _) => "boating",
        (24, _) => "driving",
        (25, _) => "golf",
        (26, _) => "hang_gliding",
        (27, _) => "horseback_riding",
        (28, _) => "hunting",
        (29, _) => "fishing",
        (30, _) => "inline_skating",
        (31, _) => "rock_climbing",
        (32, _) => "sailing",
        (33, _) => "ice_skating",
        (34, _) => "sky_diving",
        (35, _) => "snowshoeing",
        (36, _) => "snowmobiling",
        (37, _) => "stand_up_paddleboarding",
        (38, _) => "surfing",
        (39, _) => "wakeboarding",
        (40, _) => "water_skiing",
        (41, _) => "kayaking",
        (42, _) => "rafting",
        (43, _) => "windsurfing",
        (44, _) => "kitesurfing",
        (45, _) => "tactical",
        (46, _) => "jumpmaster",
        (47, _) => "boxing",
        (48, _) => "floor_climbing",
        (49, _) => "baseball",
        (53, _) => "diving",
        (62, _) => "hiit",
        (64, _) => "racket",
        (65, _) => "wheelchair_push_walk",
        (66, _) => "wheelchair_push_run",
        (67, _) => "meditation",
        (69, _) => "disc_golf",
        (71, _) => "cricket",
        (72, _) => "rugby",
        (73, _) => "hockey",
        (74, _) => "lacrosse",
        (75, _) => "volleyball",
        (76, _) => "water_tubing",
        (77, _) => "wakesurfing",
        (80, _) => "mixed_martial_arts",
        (82, _) => "snorkeling",
        (83, _) => "dance",
        (84, _) => "jump_rope",
        (other, _) => return Some(format!("sport_{other}")),
    };
    Some(name.to_owned())
}

/// The manufacturers whose products share Garmin's product numbers.
const GARMIN_FAMILY: [i64; 4] = [1, 13, 15, 89];

fn manufacturer(id: i64) -> Option<&'static str> {
    Some(match id {
        1 => "garmin",
        11 => "tanita",
        13 | 15 => "dynastream",
        19 => "beurer",
        23 => "suunto",
        32 => "wahoo",
        69 => "stages",
        71 => "tomtom",
        89 => "tacx",
        95 => "stryd",
        123 => "polar",
        255 => "development",
        260 => "zwift",
        265 => "strava",
        267 => "bryton",
        289 => "hammerhead",
        294 => "coros",
        305 => "whoop",
        _ => return None,
    })
}

fn garmin_product(id: i64) -> Option<&'static str> {
    Some(match id {
        1551 => "fenix",
        1967 => "fenix 2",
        2050 => "fenix 3",
        2413 => "fenix 3 hr",
        2544 => "fenix 5s",
        2604 => "fenix 5x",
        2697 => "fenix 5",
        2900 => "fenix 5s plus",
        3110 => "fenix 5 plus",
        3111 => "fenix 5x plus",
        3288 => "fenix 6s",
        3290 => "fenix 6",
        3291 => "fenix 6x",
        3905 => "fenix 7s",
        3906 => "fenix 7",
        3907 => "fenix 7x",
        4536 => "fenix 8",
        2431 => "forerunner 235",
        2691 => "forerunner 935",
        3076 => "forerunner 245",
        3077 => "forerunner 245 music",
        3113 => "forerunner 945",
        3589 => "forerunner 745",
        3869 => "forerunner 55",
        3990 => "forerunner 255 music",
        3992 => "forerunner 255",
        4024 => "forerunner 955",
        4257 => "forerunner 265",
        4258 => "forerunner 265s",
        4315 => "forerunner 965",
        4432 => "forerunner 165",
        2700 => "vivoactive 3",
        3224 => "vivoactive 4s",
        3225 => "vivoactive 4",
        4426 => "vivoactive 5",
        3226 => "venu",
        3703 => "venu 2",
        3704 => "venu 2s",
        3851 => "venu 2 plus",
        4260 => "venu 3",
        4261 => "venu 3s",
        3888 => "instinct 2",
        3943 => "epix gen 2",
        2713 => "edge 1030",
        3121 => "edge 530",
        3122 => "edge 830",
        3570 => "edge 1030 plus",
        3843 => "edge 1040",
        4061 => "edge 540",
        4062 => "edge 840",
        2429 => "index smart scale",
        3461 => "index s2",
        65534 => "connect",
        _ => return None,
    })
}

/// The `source` of a file's rows, from its `file_id`: the manufacturer and the product
/// (its `product_name` where written, else Garmin's name of its number), lowercase;
/// the manufacturer alone when the product is unknown, `manufacturer <n>` when the
/// manufacturer is; `None` without a manufacturer.
pub(super) fn source(
    manufacturer_id: Option<i64>,
    product: Option<i64>,
    product_name: Option<&str>,
) -> Option<String> {
    let id = manufacturer_id?;
    let maker = match manufacturer(id) {
        Some(name) => name.to_owned(),
        None => format!("manufacturer {id}"),
    };
    let product = match product_name.map(str::trim).filter(|p| !p.is_empty()) {
        Some(name) => Some(name.to_lowercase()),
        None => product
            .filter(|_| GARMIN_FAMILY.contains(&id))
            .and_then(garmin_product)
            .map(str::to_owned),
    };
    Some(match product {
        Some(product) if product.starts_with(&maker) => product,
        Some(product) => format!("{maker} {product}"),
        None => maker,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sports_take_the_shared_vocabulary() {
        assert_eq!(sport(Some(1), Some(1)).as_deref(), Some("run"), "treadmill");
        assert_eq!(sport(Some(2), None).as_deref(), Some("ride"));
        assert_eq!(sport(Some(5), Some(17)).as_deref(), Some("swim"));
        assert_eq!(sport(Some(11), None).as_deref(), Some("walk"));
        assert_eq!(sport(Some(10), Some(20)).as_deref(), Some("strength"));
        assert_eq!(sport(Some(10), Some(26)).as_deref(), Some("training"));
        assert_eq!(sport(Some(17), None).as_deref(), Some("hiking"));
        assert_eq!(sport(Some(0), None).as_deref(), Some("generic"));
        assert_eq!(sport(Some(200), None).as_deref(), Some("sport_200"));
        assert_eq!(sport(None, Some(20)), None);
    }

    #[test]
    fn sources_name_manufacturer_and_product() {
        assert_eq!(
            source(Some(1), Some(3906), None).as_deref(),
            Some("garmin fenix 7")
        );
        assert_eq!(source(Some(1), Some(9999), None).as_deref(), Some("garmin"));
        assert_eq!(source(Some(1), None, None).as_deref(), Some("garmin"));
        assert_eq!(
            source(Some(15), Some(3113), None).as_deref(),
            Some("dynastream forerunner 945")
        );
        assert_eq!(
            source(Some(32), Some(3906), None).as_deref(),
            Some("wahoo"),
            "product numbers of other makers are their own"
        );
        assert_eq!(
            source(Some(32), Some(28), Some(" ELEMNT BOLT ")).as_deref(),
            Some("wahoo elemnt bolt")
        );
        assert_eq!(
            source(Some(294), None, Some("COROS PACE 3")).as_deref(),
            Some("coros pace 3"),
            "a product name that repeats its maker is not doubled"
        );
        assert_eq!(
            source(Some(4000), Some(1), None).as_deref(),
            Some("manufacturer 4000")
        );
        assert_eq!(source(None, Some(3906), None), None);
    }
}
