//! The food-composition table of the simulation: common foods with stable ids and their
//! composition per 100 g (rounded values in the spirit of USDA FoodData Central and CIQUAL),
//! and how meals are composed from them.

use super::rng::Rng;

/// Where a food goes in a meal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Role {
    Breakfast,
    Drink,
    Fruit,
    /// A main dish with meat or fish.
    Meat,
    /// A main dish without meat.
    Protein,
    Starch,
    Vegetable,
    Snack,
}

#[derive(Debug, Clone, Copy)]
pub(super) struct Food {
    pub id: &'static str,
    pub name: &'static str,
    pub energy_kcal: f64,
    pub protein_g: f64,
    pub carbs_g: f64,
    pub fat_g: f64,
    pub fiber_g: f64,
    pub sugars_g: f64,
    pub sodium_mg: f64,
    pub role: Role,
    /// Usual portion in grams, within 30–400.
    pub portion: (i64, i64),
}

macro_rules! foods {
    ($( $id:literal $name:literal $kcal:literal $prot:literal $carbs:literal $fat:literal
        $fiber:literal $sugars:literal $sodium:literal $role:ident $lo:literal $hi:literal; )*) => {
        &[$( Food {
            id: $id, name: $name, energy_kcal: $kcal, protein_g: $prot, carbs_g: $carbs,
            fat_g: $fat, fiber_g: $fiber, sugars_g: $sugars, sodium_mg: $sodium,
            role: Role::$role, portion: ($lo, $hi),
        }, )*]
    };
}

/// id, name, kcal, protein, carbohydrates, fat, fiber, sugars (g), sodium (mg) per 100 g;
/// role; portion range (g).
pub(super) const FOODS: &[Food] = foods! {
    "F001" "Rolled oats" 379.0 13.2 67.7 6.5 10.1 1.0 6.0 Breakfast 40 90;
    "F002" "Whole milk" 61.0 3.2 4.8 3.3 0.0 4.8 43.0 Drink 100 300;
    "F003" "Banana" 89.0 1.1 22.8 0.3 2.6 12.2 1.0 Fruit 90 150;
    "F004" "Apple" 52.0 0.3 13.8 0.2 2.4 10.4 1.0 Fruit 120 220;
    "F005" "Whole wheat bread" 247.0 13.0 41.3 3.4 7.0 5.6 450.0 Breakfast 40 120;
    "F006" "Baguette" 270.0 9.0 55.0 1.5 2.5 3.0 600.0 Starch 50 150;
    "F007" "Strawberry jam" 250.0 0.4 61.0 0.1 1.0 49.0 32.0 Breakfast 30 45;
    "F008" "Boiled egg" 155.0 12.6 1.1 10.6 0.0 1.1 124.0 Breakfast 50 120;
    "F009" "Plain yogurt" 61.0 3.5 4.7 3.3 0.0 4.7 46.0 Breakfast 125 250;
    "F010" "Greek yogurt 0%" 59.0 10.2 3.6 0.4 0.0 3.2 36.0 Snack 150 250;
    "F011" "Orange juice" 45.0 0.7 10.4 0.2 0.2 8.4 1.0 Drink 150 300;
    "F012" "Brewed coffee" 1.0 0.1 0.0 0.0 0.0 0.0 2.0 Drink 100 300;
    "F013" "Roasted chicken breast" 165.0 31.0 0.0 3.6 0.0 0.0 74.0 Meat 100 220;
    "F014" "Baked salmon" 206.0 22.1 0.0 12.4 0.0 0.0 61.0 Meat 100 200;
    "F015" "Grilled beef steak" 271.0 25.0 0.0 19.0 0.0 0.0 60.0 Meat 120 250;
    "F016" "Cooked white rice" 130.0 2.7 28.2 0.3 0.4 0.1 1.0 Starch 120 300;
    "F017" "Cooked pasta" 158.0 5.8 30.9 0.9 1.8 0.6 1.0 Starch 150 350;
    "F018" "Boiled potatoes" 87.0 1.9 20.1 0.1 1.8 0.9 4.0 Starch 150 300;
    "F019" "Steamed broccoli" 35.0 2.4 7.2 0.4 3.3 1.4 41.0 Vegetable 80 200;
    "F020" "Raw carrots" 41.0 0.9 9.6 0.2 2.8 4.7 69.0 Vegetable 50 150;
    "F021" "Tomato" 18.0 0.9 3.9 0.2 1.2 2.6 5.0 Vegetable 80 200;
    "F022" "Green salad" 15.0 1.4 2.9 0.2 1.3 0.8 28.0 Vegetable 40 120;
    "F023" "Cooked lentils" 116.0 9.0 20.1 0.4 7.9 1.8 2.0 Protein 150 300;
    "F024" "Cooked chickpeas" 164.0 8.9 27.4 2.6 7.6 4.8 7.0 Protein 120 250;
    "F025" "Firm tofu" 76.0 8.1 1.9 4.8 0.3 0.6 7.0 Protein 100 200;
    "F026" "Cheddar cheese" 403.0 24.9 1.3 33.1 0.0 0.5 621.0 Snack 30 60;
    "F027" "Camembert" 300.0 19.8 0.5 24.3 0.0 0.5 842.0 Snack 30 60;
    "F028" "Cooked ham" 145.0 21.0 1.5 6.0 0.0 1.0 1200.0 Meat 40 100;
    "F029" "Canned tuna in water" 116.0 25.5 0.0 0.8 0.0 0.0 247.0 Meat 80 140;
    "F030" "Vegetable soup" 30.0 1.2 5.5 0.4 1.3 2.0 300.0 Vegetable 250 400;
    "F031" "Almonds" 579.0 21.2 21.6 49.9 12.5 4.4 1.0 Snack 30 50;
    "F032" "Dark chocolate 70%" 598.0 7.8 45.9 42.6 10.9 24.0 20.0 Snack 30 50;
    "F033" "Croissant" 406.0 8.2 45.8 21.0 2.6 11.3 467.0 Breakfast 45 70;
    "F034" "Pizza margherita" 266.0 11.0 33.0 10.0 2.3 3.6 598.0 Protein 200 400;
    "F035" "French fries" 312.0 3.4 41.0 15.0 3.8 0.3 210.0 Starch 100 200;
    "F036" "Hamburger" 254.0 13.0 30.0 9.0 1.5 6.0 480.0 Meat 150 260;
    "F037" "Orange" 47.0 0.9 11.8 0.1 2.4 9.4 0.0 Fruit 120 200;
    "F038" "Strawberries" 32.0 0.7 7.7 0.3 2.0 4.9 1.0 Fruit 80 200;
    "F039" "Avocado" 160.0 2.0 8.5 14.7 6.7 0.7 7.0 Vegetable 50 150;
    "F040" "Peanut butter" 588.0 25.1 20.0 50.4 6.0 9.2 430.0 Breakfast 30 40;
    "F041" "Granola bar" 471.0 10.0 64.0 20.0 5.3 29.0 290.0 Snack 30 50;
    "F042" "Cola soft drink" 42.0 0.0 10.6 0.0 0.0 10.6 4.0 Drink 250 400;
    "F043" "Boiled green beans" 35.0 1.9 7.9 0.3 3.2 1.6 1.0 Vegetable 80 200;
    "F044" "Cooked quinoa" 120.0 4.4 21.3 1.9 2.8 0.9 7.0 Starch 120 250;
};

/// The foods of one meal (`breakfast`, `lunch`, `dinner` or `snack`): 1–4 distinct foods and
/// their quantities in grams.
pub(super) fn compose(
    rng: &mut Rng,
    meal: &str,
    vegetarian: bool,
    items: &mut Vec<(&'static Food, f64)>,
) {
    items.clear();
    let allowed = |f: &Food| !(vegetarian && f.role == Role::Meat);
    let pick = |rng: &mut Rng, roles: &[Role], items: &mut Vec<(&'static Food, f64)>| {
        let pool: Vec<&'static Food> = FOODS
            .iter()
            .filter(|f| roles.contains(&f.role) && allowed(f))
            .filter(|f| !items.iter().any(|(g, _)| g.id == f.id))
            .collect();
        if pool.is_empty() {
            return;
        }
        let food = pool[rng.int(0, pool.len() as i64 - 1) as usize];
        let (lo, hi) = food.portion;
        let grams = (rng.int(lo, hi) as f64 / 5.0).round() * 5.0;
        items.push((food, grams.clamp(30.0, 400.0)));
    };
    match meal {
        "breakfast" => {
            pick(rng, &[Role::Breakfast], items);
            let more = rng.int(0, 3);
            for _ in 0..more {
                pick(rng, &[Role::Breakfast, Role::Drink, Role::Fruit], items);
            }
        }
        "lunch" | "dinner" => {
            if vegetarian || rng.chance(0.25) {
                pick(rng, &[Role::Protein], items);
            } else {
                pick(rng, &[Role::Meat], items);
            }
            if rng.chance(0.75) {
                pick(rng, &[Role::Starch], items);
            }
            if rng.chance(0.7) {
                pick(rng, &[Role::Vegetable], items);
            }
            if rng.chance(0.3) {
                pick(rng, &[Role::Fruit, Role::Snack, Role::Drink], items);
            }
        }
        _ => {
            pick(rng, &[Role::Snack, Role::Fruit], items);
            if rng.chance(0.4) {
                pick(rng, &[Role::Drink, Role::Snack, Role::Fruit], items);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn simulate_foods_are_consistent() {
        assert!(FOODS.len() >= 40, "{} foods", FOODS.len());
        for (i, f) in FOODS.iter().enumerate() {
            assert_eq!(
                f.id,
                format!("F{:03}", i + 1),
                "ids are stable and in order"
            );
            // Energy from macronutrients (Atwater) within a margin of the stated energy.
            let atwater = 4.0 * f.protein_g + 4.0 * f.carbs_g + 9.0 * f.fat_g;
            assert!(
                (atwater - f.energy_kcal).abs() <= 0.15 * f.energy_kcal + 8.0,
                "{} {}: {atwater} vs {}",
                f.id,
                f.name,
                f.energy_kcal
            );
            assert!(f.sugars_g <= f.carbs_g + 0.01, "{}", f.id);
            assert!(f.fiber_g <= f.carbs_g + 0.01, "{}", f.id);
            assert!(30 <= f.portion.0 && f.portion.0 <= f.portion.1 && f.portion.1 <= 400);
        }
        let mut rng = Rng::new(7);
        let mut items = Vec::new();
        for meal in ["breakfast", "lunch", "dinner", "snack"] {
            for _ in 0..200 {
                compose(&mut rng, meal, true, &mut items);
                assert!((1..=4).contains(&items.len()), "{meal}: {}", items.len());
                for (i, (f, g)) in items.iter().enumerate() {
                    assert!((30.0..=400.0).contains(g), "{g}");
                    assert_ne!(f.role, Role::Meat, "vegetarian");
                    assert!(items[..i].iter().all(|(o, _)| o.id != f.id), "distinct");
                }
            }
        }
    }
}
