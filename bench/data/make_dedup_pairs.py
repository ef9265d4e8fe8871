"""Write dedup_pairs.json: labelled memory pairs for the dedup rule (bench/dedup.py, tests/vault/test_dedup.py).

    python bench/data/make_dedup_pairs.py

Every pair below was written by hand: a memory a user could plausibly store, then either
another memory that states a different fact ("distinct") or the same fact said again
("same"). Only the case/punctuation copies at the end are derived mechanically, from
the hand-written first sentences. The output is sorted and stable: re-running it gives
the same file.
"""

from __future__ import annotations

import json
from pathlib import Path

# (first memory, [(label, category, second memory), ...])
D, S = "distinct", "same"
GROUPS: list[tuple[str, list[tuple[str, str, str]]]] = [
    (
        "Meeting with Bob on Monday about the budget",
        [
            (D, "date", "Meeting with Bob on Tuesday about the budget"),
            (D, "name", "Meeting with Alice on Monday about the budget"),
            (S, "word-order", "On Monday, meeting with Bob about the budget"),
            (S, "filler", "Meeting with Bob on Monday about the budget, actually"),
            (S, "rephrase", "Budget meeting with Bob on Monday"),
        ],
    ),
    (
        "order-1001 shipped",
        [
            (D, "code", "order-1002 shipped"),
            (S, "punctuation", "order-1001 shipped."),
            (S, "case", "Order-1001 shipped"),
        ],
    ),
    (
        "My daughter Alice is 7 years old",
        [
            (D, "number", "My daughter Alice is 8 years old"),
            (D, "name", "My daughter Emma is 7 years old"),
            (S, "contraction", "My daughter Alice's 7 years old"),
            (S, "rephrase", "Alice, my daughter, is seven years old"),
            (S, "punctuation", "My daughter, Alice, is 7 years old."),
        ],
    ),
    (
        "I like hiking trip number 3 in the Alps",
        [
            (D, "number", "I like hiking trip number 4 in the Alps"),
            (D, "place", "I like hiking trip number 3 in the Pyrenees"),
            (D, "negation", "I don't like hiking trip number 3 in the Alps"),
        ],
    ),
    (
        "I am allergic to peanuts",
        [
            (D, "negation", "I am not allergic to peanuts"),
            (D, "object", "I am allergic to shellfish"),
            (S, "contraction", "I'm allergic to peanuts"),
            (S, "filler", "I am actually allergic to peanuts"),
            (S, "rephrase", "I have a peanut allergy"),
            (S, "case", "i am allergic to peanuts"),
        ],
    ),
    (
        "I live in Paris",
        [
            (D, "place", "I live in Lyon"),
            (D, "negation", "I don't live in Paris"),
            (D, "tense", "I lived in Paris"),
            (S, "punctuation", "I live in Paris!"),
            (S, "rephrase", "My home is in Paris"),
            (S, "filler", "I really do live in Paris"),
        ],
    ),
    (
        "I run 10 km every Sunday morning",
        [
            (D, "unit", "I run 10 miles every Sunday morning"),
            (D, "number", "I run 12 km every Sunday morning"),
            (D, "date", "I run 10 km every Saturday morning"),
            (S, "word-order", "Every Sunday morning I run 10 km"),
            (S, "punctuation", "I run 10 km, every Sunday morning."),
            (S, "rephrase", "Each Sunday morning I go for a 10 km run"),
        ],
    ),
    (
        "My flight to Tokyo leaves on 14 March at 9:40",
        [
            (D, "date", "My flight to Tokyo leaves on 15 March at 9:40"),
            (D, "number", "My flight to Tokyo leaves on 14 March at 9:45"),
            (D, "place", "My flight to Osaka leaves on 14 March at 9:40"),
            (D, "date", "My flight to Tokyo leaves on 14 April at 9:40"),
            (S, "word-order", "On 14 March at 9:40 my flight to Tokyo leaves"),
            (S, "case", "my flight to tokyo leaves on 14 march at 9:40"),
        ],
    ),
    (
        "The dentist appointment is on 2026-05-12",
        [
            (D, "date", "The dentist appointment is on 2026-05-13"),
            (D, "date", "The dentist appointment is on 2027-05-12"),
            (S, "filler", "The dentist appointment is just on 2026-05-12"),
            (S, "punctuation", "The dentist appointment is on 2026-05-12."),
            (S, "rephrase", "Dentist appointment: 2026-05-12"),
        ],
    ),
    (
        "I drive a blue Toyota Corolla from 2015",
        [
            (D, "number", "I drive a blue Toyota Corolla from 2016"),
            (D, "name", "I drive a blue Honda Civic from 2015"),
            (D, "object", "I drive a red Toyota Corolla from 2015"),
            (S, "case", "I drive a blue toyota corolla from 2015"),
            (S, "rephrase", "My car is a blue 2015 Toyota Corolla"),
            (S, "word-order", "From 2015, I drive a blue Toyota Corolla"),
        ],
    ),
    (
        "My sister Maria lives in Porto",
        [
            (D, "name", "My sister Ana lives in Porto"),
            (D, "place", "My sister Maria lives in Lisbon"),
            (D, "object", "My brother Maria lives in Porto"),
            (S, "punctuation", "My sister, Maria, lives in Porto."),
            (S, "rephrase", "Maria, my sister, is living in Porto"),
        ],
    ),
    (
        "I prefer window seats on long flights",
        [
            (D, "object", "I prefer aisle seats on long flights"),
            (D, "negation", "I never prefer window seats on long flights"),
            (D, "object", "I prefer window seats on short flights"),
            (S, "word-order", "On long flights I prefer window seats"),
            (S, "filler", "I really prefer window seats on long flights"),
            (S, "rephrase", "On long flights I like to sit by the window"),
        ],
    ),
    (
        "The wifi password is tulip-4821",
        [
            (D, "code", "The wifi password is tulip-4822"),
            (D, "code", "The wifi password is tulip-8421"),
            (S, "punctuation", "The wifi password is: tulip-4821"),
            (S, "case", "the wifi password is tulip-4821"),
        ],
    ),
    (
        "I take 20 mg of citalopram every morning",
        [
            (D, "number", "I take 40 mg of citalopram every morning"),
            (D, "unit", "I take 20 ml of citalopram every morning"),
            (D, "date", "I take 20 mg of citalopram every evening"),
            (D, "negation", "I no longer take 20 mg of citalopram every morning"),
            (S, "word-order", "Every morning I take 20 mg of citalopram"),
            (S, "filler", "I basically take 20 mg of citalopram every morning"),
        ],
    ),
    (
        "Bob owes me 50 euros",
        [
            (D, "number", "Bob owes me 60 euros"),
            (D, "unit", "Bob owes me 50 dollars"),
            (D, "role", "I owe Bob 50 euros"),
            (D, "name", "Tom owes me 50 euros"),
            (S, "punctuation", "Bob owes me 50 euros."),
            (S, "rephrase", "Bob still owes me 50 euros"),
        ],
    ),
    (
        "Alice is older than Bob",
        [
            (D, "role", "Bob is older than Alice"),
            (D, "object", "Alice is younger than Bob"),
            (S, "case", "alice is older than bob"),
        ],
    ),
    (
        "I moved from Berlin to Munich in 2019",
        [
            (D, "role", "I moved from Munich to Berlin in 2019"),
            (D, "number", "I moved from Berlin to Munich in 2018"),
            (D, "place", "I moved from Berlin to Hamburg in 2019"),
            (S, "word-order", "In 2019 I moved from Berlin to Munich"),
            (S, "word-order", "I moved to Munich from Berlin in 2019"),
            (S, "punctuation", "I moved from Berlin to Munich (in 2019)."),
        ],
    ),
    (
        "I like cats but not dogs",
        [
            (D, "role", "I like dogs but not cats"),
            (D, "negation", "I like cats and dogs"),
            (S, "punctuation", "I like cats, but not dogs."),
            (S, "contraction", "I like cats, but I don't like dogs"),
        ],
    ),
    (
        "My passport expires in August 2028",
        [
            (D, "date", "My passport expires in September 2028"),
            (D, "number", "My passport expires in August 2029"),
            (S, "word-order", "In August 2028 my passport expires"),
            (S, "rephrase", "My passport is valid until August 2028"),
            (S, "case", "My Passport expires in August 2028"),
        ],
    ),
    (
        "I'm vegetarian",
        [
            (D, "negation", "I'm not vegetarian"),
            (D, "object", "I'm vegan"),
            (D, "tense", "I was vegetarian"),
            (S, "contraction", "I am vegetarian"),
            (S, "rephrase", "I am a vegetarian"),
            (S, "punctuation", "I'm vegetarian."),
        ],
    ),
    (
        "Our anniversary is on June 21",
        [
            (D, "date", "Our anniversary is on June 12"),
            (D, "date", "Our anniversary is on July 21"),
            (S, "rephrase", "Our anniversary is June 21st"),
            (S, "word-order", "On June 21 is our anniversary"),
            (S, "punctuation", "Our anniversary is on June 21."),
        ],
    ),
    (
        "I work at Acme Corp as a data engineer",
        [
            (D, "name", "I work at Globex as a data engineer"),
            (D, "object", "I work at Acme Corp as a data scientist"),
            (D, "tense", "I worked at Acme Corp as a data engineer"),
            (S, "word-order", "As a data engineer I work at Acme Corp"),
            (S, "filler", "I actually work at Acme Corp as a data engineer"),
            (S, "rephrase", "I'm a data engineer at Acme Corp"),
        ],
    ),
    (
        "The kids' school starts at 8:15",
        [
            (D, "number", "The kids' school starts at 8:30"),
            (D, "object", "The kids' school ends at 8:15"),
            (S, "punctuation", "The kids' school starts at 8:15."),
            (S, "rephrase", "School for the kids begins at 8:15"),
        ],
    ),
    (
        "I weigh 72 kg",
        [
            (D, "number", "I weigh 74 kg"),
            (D, "unit", "I weigh 72 lb"),
            (S, "punctuation", "I weigh 72 kg."),
            (S, "rephrase", "My weight is 72 kg"),
        ],
    ),
    (
        "Mum's birthday is on 3 October",
        [
            (D, "date", "Mum's birthday is on 4 October"),
            (D, "date", "Mum's birthday is on 3 November"),
            (D, "name", "Dad's birthday is on 3 October"),
            (S, "word-order", "On 3 October is Mum's birthday"),
            (S, "case", "mum's birthday is on 3 october"),
        ],
    ),
    (
        "I don't drink coffee after 2 pm",
        [
            (D, "negation", "I drink coffee after 2 pm"),
            (D, "number", "I don't drink coffee after 4 pm"),
            (D, "object", "I don't drink tea after 2 pm"),
            (D, "role", "I don't drink coffee before 2 pm"),
            (S, "contraction", "I do not drink coffee after 2 pm"),
            (S, "word-order", "After 2 pm I don't drink coffee"),
        ],
    ),
    (
        "Tom is allergic to penicillin",
        [
            (D, "name", "Sam is allergic to penicillin"),
            (D, "object", "Tom is allergic to aspirin"),
            (D, "negation", "Tom isn't allergic to penicillin"),
            (S, "contraction", "Tom's allergic to penicillin"),
            (S, "punctuation", "Tom is allergic to penicillin!"),
        ],
    ),
    (
        "The rent is 1200 euros a month",
        [
            (D, "number", "The rent is 1300 euros a month"),
            (D, "unit", "The rent is 1200 euros a week"),
            (D, "unit", "The rent is 1200 pounds a month"),
            (S, "filler", "The rent is just 1200 euros a month"),
            (S, "rephrase", "Monthly rent: 1200 euros"),
        ],
    ),
    (
        "I have two brothers and one sister",
        [
            (D, "number", "I have three brothers and one sister"),
            (D, "role", "I have two sisters and one brother"),
            (D, "number", "I have two brothers and two sisters"),
            (S, "punctuation", "I have two brothers, and one sister."),
            (S, "rephrase", "I've got two brothers and a sister"),
        ],
    ),
    (
        "We are going to Rome next Friday",
        [
            (D, "date", "We are going to Rome next Thursday"),
            (D, "place", "We are going to Milan next Friday"),
            (D, "negation", "We are not going to Rome next Friday"),
            (S, "contraction", "We're going to Rome next Friday"),
            (S, "word-order", "Next Friday we are going to Rome"),
        ],
    ),
    (
        "Gym membership renews on the 1st of every month",
        [
            (D, "number", "Gym membership renews on the 15th of every month"),
            (D, "unit", "Gym membership renews on the 1st of every year"),
            (S, "case", "gym membership renews on the 1st of every month"),
            (S, "punctuation", "Gym membership renews on the 1st of every month."),
        ],
    ),
    (
        "I sleep about 7 hours a night",
        [
            (D, "number", "I sleep about 6 hours a night"),
            (D, "unit", "I sleep about 7 minutes a night"),
            (S, "rephrase", "I get roughly 7 hours of sleep a night"),
            (S, "filler", "I sleep about 7 hours a night, honestly"),
        ],
    ),
    (
        "My phone number is +44 7700 900123",
        [
            (D, "code", "My phone number is +44 7700 900124"),
            (D, "code", "My phone number is +33 7700 900123"),
            (S, "punctuation", "My phone number is: +44 7700 900123."),
        ],
    ),
    (
        "The meeting room is on floor 4",
        [
            (D, "number", "The meeting room is on floor 5"),
            (S, "rephrase", "The meeting room is on the 4th floor"),
            (S, "case", "The Meeting Room is on floor 4"),
        ],
    ),
    (
        "I play tennis with Jake on Wednesdays",
        [
            (D, "name", "I play tennis with Mike on Wednesdays"),
            (D, "date", "I play tennis with Jake on Thursdays"),
            (D, "object", "I play squash with Jake on Wednesdays"),
            (S, "word-order", "On Wednesdays I play tennis with Jake"),
            (S, "word-order", "I play tennis on Wednesdays with Jake"),
            (S, "filler", "I also play tennis with Jake on Wednesdays"),
        ],
    ),
    (
        "My blood type is A positive",
        [
            (D, "code", "My blood type is B positive"),
            (D, "object", "My blood type is A negative"),
            (S, "case", "my blood type is a positive"),
            (S, "rephrase", "I have blood type A positive"),
        ],
    ),
    (
        "Invoice INV-2291 is due on 30 June",
        [
            (D, "code", "Invoice INV-2292 is due on 30 June"),
            (D, "date", "Invoice INV-2291 is due on 30 July"),
            (D, "negation", "Invoice INV-2291 is not due on 30 June"),
            (S, "word-order", "On 30 June invoice INV-2291 is due"),
            (S, "punctuation", "Invoice INV-2291 is due on 30 June."),
        ],
    ),
    (
        "I can swim",
        [
            (D, "negation", "I can't swim"),
            (D, "negation", "I cannot swim"),
            (S, "punctuation", "I can swim."),
            (S, "case", "I CAN SWIM"),
        ],
    ),
    (
        "Lena has been learning Japanese for 3 years",
        [
            (D, "number", "Lena has been learning Japanese for 4 years"),
            (D, "unit", "Lena has been learning Japanese for 3 months"),
            (D, "object", "Lena has been learning Korean for 3 years"),
            (D, "name", "Nina has been learning Japanese for 3 years"),
            (S, "word-order", "For 3 years Lena has been learning Japanese"),
            (S, "contraction", "Lena's been learning Japanese for 3 years"),
        ],
    ),
    (
        "The car needs an oil change every 10,000 km",
        [
            (D, "number", "The car needs an oil change every 15,000 km"),
            (D, "unit", "The car needs an oil change every 10,000 miles"),
            (S, "filler", "The car really needs an oil change every 10,000 km"),
            (S, "punctuation", "The car needs an oil change every 10,000 km."),
        ],
    ),
    (
        "Dinner with Priya at Nopa on Saturday at 7 pm",
        [
            (D, "name", "Dinner with Ravi at Nopa on Saturday at 7 pm"),
            (D, "place", "Dinner with Priya at Zuni on Saturday at 7 pm"),
            (D, "date", "Dinner with Priya at Nopa on Sunday at 7 pm"),
            (D, "number", "Dinner with Priya at Nopa on Saturday at 8 pm"),
            (S, "word-order", "On Saturday at 7 pm, dinner with Priya at Nopa"),
            (S, "case", "dinner with priya at nopa on saturday at 7 pm"),
        ],
    ),
    (
        "I graduated from MIT in 2012",
        [
            (D, "number", "I graduated from MIT in 2013"),
            (D, "name", "I graduated from Stanford in 2012"),
            (S, "word-order", "In 2012 I graduated from MIT"),
            (S, "rephrase", "I finished my degree at MIT in 2012"),
        ],
    ),
    (
        "The baby was born at 3.2 kg",
        [
            (D, "number", "The baby was born at 3.5 kg"),
            (D, "number", "The baby was born at 32 kg"),
            (S, "punctuation", "The baby was born at 3.2 kg!"),
        ],
    ),
    (
        "I have a cat named Whiskers",
        [
            (D, "name", "I have a cat named Mittens"),
            (D, "object", "I have a dog named Whiskers"),
            (D, "tense", "I had a cat named Whiskers"),
            (S, "rephrase", "My cat is called Whiskers"),
            (S, "punctuation", 'I have a cat named "Whiskers"'),
        ],
    ),
    (
        "I prefer tea over coffee",
        [
            (D, "role", "I prefer coffee over tea"),
            (D, "negation", "I don't prefer tea over coffee"),
            (S, "filler", "I really prefer tea over coffee"),
            (S, "rephrase", "I like tea more than coffee"),
        ],
    ),
    (
        "Jonas starts his new job on 1 September",
        [
            (D, "date", "Jonas starts his new job on 1 October"),
            (D, "name", "Jonas starts his new job on 1 September in Oslo"),
            (D, "tense", "Jonas started his new job on 1 September"),
            (S, "word-order", "On 1 September Jonas starts his new job"),
            (S, "contraction", "Jonas's starting his new job on 1 September"),
        ],
    ),
    (
        "Parking spot B-17 is mine",
        [
            (D, "code", "Parking spot B-18 is mine"),
            (D, "code", "Parking spot C-17 is mine"),
            (D, "negation", "Parking spot B-17 is not mine"),
            (S, "case", "parking spot b-17 is mine"),
        ],
    ),
    (
        "My shoe size is 42",
        [
            (D, "number", "My shoe size is 43"),
            (D, "unit", "My shoe size is 42 US"),
            (S, "punctuation", "My shoe size is 42."),
            (S, "rephrase", "I wear size 42 shoes"),
        ],
    ),
    (
        "I was born in Nairobi",
        [
            (D, "place", "I was born in Mombasa"),
            (D, "negation", "I wasn't born in Nairobi"),
            (S, "punctuation", "I was born in Nairobi."),
            (S, "rephrase", "My birthplace is Nairobi"),
        ],
    ),
    (
        "The thermostat is set to 21 degrees",
        [
            (D, "number", "The thermostat is set to 19 degrees"),
            (D, "unit", "The thermostat is set to 21 degrees Fahrenheit"),
            (S, "filler", "The thermostat is just set to 21 degrees"),
            (S, "case", "The Thermostat is set to 21 degrees"),
        ],
    ),
    (
        "I'm flying with KLM on flight KL1234",
        [
            (D, "code", "I'm flying with KLM on flight KL1243"),
            (D, "name", "I'm flying with Lufthansa on flight KL1234"),
            (S, "contraction", "I am flying with KLM on flight KL1234"),
            (S, "word-order", "On flight KL1234 I'm flying with KLM"),
        ],
    ),
    (
        "My manager is Sarah Chen",
        [
            (D, "name", "My manager is Sarah Lee"),
            (D, "name", "My manager is Laura Chen"),
            (S, "punctuation", "My manager is Sarah Chen."),
            (S, "rephrase", "Sarah Chen is my manager"),
        ],
    ),
    (
        "Trash goes out on Tuesday nights",
        [
            (D, "date", "Trash goes out on Thursday nights"),
            (D, "object", "Trash goes out on Tuesday mornings"),
            (S, "word-order", "On Tuesday nights trash goes out"),
            (S, "case", "trash goes out on tuesday nights"),
        ],
    ),
    (
        "I am lactose intolerant",
        [
            (D, "negation", "I am not lactose intolerant"),
            (D, "object", "I am gluten intolerant"),
            (S, "contraction", "I'm lactose intolerant"),
            (S, "filler", "I'm actually lactose intolerant"),
        ],
    ),
    (
        "We adopted Luna in May 2021",
        [
            (D, "date", "We adopted Luna in March 2021"),
            (D, "number", "We adopted Luna in May 2022"),
            (D, "name", "We adopted Max in May 2021"),
            (S, "word-order", "In May 2021 we adopted Luna"),
            (S, "punctuation", "We adopted Luna in May, 2021."),
        ],
    ),
    (
        "The deadline for the grant is 5 pm on Friday",
        [
            (D, "number", "The deadline for the grant is 6 pm on Friday"),
            (D, "date", "The deadline for the grant is 5 pm on Monday"),
            (D, "unit", "The deadline for the grant is 5 am on Friday"),
            (S, "word-order", "The deadline for the grant is on Friday at 5 pm"),
            (S, "case", "The Deadline for the Grant is 5 pm on Friday"),
        ],
    ),
    (
        "I speak Spanish fluently",
        [
            (D, "object", "I speak Portuguese fluently"),
            (D, "negation", "I don't speak Spanish fluently"),
            (S, "word-order", "I fluently speak Spanish"),
            (S, "rephrase", "I am fluent in Spanish"),
        ],
    ),
    (
        "My locker code is 3-7-1-9",
        [
            (D, "code", "My locker code is 3-7-9-1"),
            (D, "code", "My locker code is 3-7-1-8"),
            (S, "punctuation", "My locker code is 3-7-1-9."),
        ],
    ),
    (
        "Grandpa turned 90 last week",
        [
            (D, "number", "Grandpa turned 91 last week"),
            (D, "name", "Grandma turned 90 last week"),
            (D, "date", "Grandpa turned 90 last month"),
            (S, "word-order", "Last week Grandpa turned 90"),
            (S, "punctuation", "Grandpa turned 90 last week!"),
        ],
    ),
    (
        "I usually cycle to work",
        [
            (D, "object", "I usually drive to work"),
            (D, "negation", "I usually don't cycle to work"),
            (D, "object", "I never cycle to work"),
            (S, "word-order", "Usually I cycle to work"),
            (S, "rephrase", "I usually bike to work"),
        ],
    ),
    (
        "The boiler was serviced on 12/01/2025",
        [
            (D, "date", "The boiler was serviced on 13/01/2025"),
            (D, "date", "The boiler was serviced on 12/01/2024"),
            (S, "punctuation", "The boiler was serviced on 12/01/2025."),
            (S, "rephrase", "Boiler serviced on 12/01/2025"),
        ],
    ),
    (
        "Kai is 180 cm tall",
        [
            (D, "number", "Kai is 170 cm tall"),
            (D, "unit", "Kai is 180 mm tall"),
            (D, "name", "Kim is 180 cm tall"),
            (S, "case", "kai is 180 cm tall"),
            (S, "rephrase", "Kai's height is 180 cm"),
        ],
    ),
    (
        "I hate horror movies",
        [
            (D, "object", "I love horror movies"),
            (D, "object", "I hate action movies"),
            (S, "filler", "I really hate horror movies"),
            (S, "rephrase", "I can't stand horror movies"),
        ],
    ),
    (
        "Budget for the kitchen renovation is $15,000",
        [
            (D, "number", "Budget for the kitchen renovation is $18,000"),
            (D, "unit", "Budget for the kitchen renovation is €15,000"),
            (D, "object", "Budget for the bathroom renovation is $15,000"),
            (S, "punctuation", "Budget for the kitchen renovation: $15,000"),
            (S, "rephrase", "The kitchen renovation budget is $15,000"),
        ],
    ),
    (
        "My pharmacy is the one on Elm Street",
        [
            (D, "place", "My pharmacy is the one on Oak Street"),
            (S, "case", "My pharmacy is the one on elm street"),
            (S, "filler", "My pharmacy is just the one on Elm Street"),
        ],
    ),
    (
        "I quit smoking in 2020",
        [
            (D, "number", "I quit smoking in 2021"),
            (D, "object", "I quit drinking in 2020"),
            (D, "object", "I started smoking in 2020"),
            (S, "word-order", "In 2020 I quit smoking"),
            (S, "rephrase", "I stopped smoking in 2020"),
        ],
    ),
    (
        "Password hint: first pet plus 99",
        [
            (D, "number", "Password hint: first pet plus 98"),
            (D, "object", "Password hint: first car plus 99"),
            (S, "case", "password hint: first pet plus 99"),
        ],
    ),
    (
        "Sofia prefers to be called Sof",
        [
            (D, "name", "Sofia prefers to be called Fia"),
            (D, "negation", "Sofia doesn't like to be called Sof"),
            (S, "punctuation", 'Sofia prefers to be called "Sof".'),
        ],
    ),
    (
        "The plumber comes between 9 and 11 on Thursday",
        [
            (D, "number", "The plumber comes between 10 and 12 on Thursday"),
            (D, "date", "The plumber comes between 9 and 11 on Tuesday"),
            (S, "word-order", "On Thursday the plumber comes between 9 and 11"),
            (S, "punctuation", "The plumber comes between 9 and 11, on Thursday."),
        ],
    ),
    (
        "I have been to Japan twice",
        [
            (D, "number", "I have been to Japan three times"),
            (D, "place", "I have been to Korea twice"),
            (D, "negation", "I have never been to Japan"),
            (S, "contraction", "I've been to Japan twice"),
            (S, "rephrase", "I've visited Japan two times"),
        ],
    ),
    (
        "Ben takes the 7:05 train to Leeds",
        [
            (D, "number", "Ben takes the 7:35 train to Leeds"),
            (D, "place", "Ben takes the 7:05 train to York"),
            (D, "name", "Dan takes the 7:05 train to Leeds"),
            (S, "case", "ben takes the 7:05 train to leeds"),
            (S, "rephrase", "Ben catches the 7:05 train to Leeds"),
        ],
    ),
    (
        "Server prod-db-3 runs Postgres 16",
        [
            (D, "code", "Server prod-db-4 runs Postgres 16"),
            (D, "number", "Server prod-db-3 runs Postgres 15"),
            (D, "name", "Server prod-db-3 runs MySQL 16"),
            (S, "punctuation", "Server prod-db-3 runs Postgres 16."),
        ],
    ),
    (
        "I want to learn the piano this year",
        [
            (D, "object", "I want to learn the guitar this year"),
            (D, "date", "I want to learn the piano next year"),
            (D, "negation", "I don't want to learn the piano this year"),
            (S, "word-order", "This year I want to learn the piano"),
            (S, "filler", "I really want to learn the piano this year"),
        ],
    ),
    (
        "Our wedding is at St Mary's Church",
        [
            (D, "place", "Our wedding is at St John's Church"),
            (S, "punctuation", "Our wedding is at St. Mary's Church"),
            (S, "case", "our wedding is at st mary's church"),
        ],
    ),
    (
        "The package weighs 2 kg",
        [
            (D, "number", "The package weighs 3 kg"),
            (D, "unit", "The package weighs 2 lb"),
            (S, "punctuation", "The package weighs 2 kg."),
            (S, "rephrase", "The package is 2 kg"),
        ],
    ),
    (
        "Exam results come out on 8 August",
        [
            (D, "date", "Exam results come out on 18 August"),
            (D, "date", "Exam results come out on 8 July"),
            (S, "word-order", "On 8 August exam results come out"),
        ],
    ),
    (
        "I don't eat pork",
        [
            (D, "negation", "I eat pork"),
            (D, "object", "I don't eat beef"),
            (S, "contraction", "I do not eat pork"),
            (S, "punctuation", "I don't eat pork."),
            (S, "rephrase", "I never eat pork"),
        ],
    ),
]


def derived(text: str) -> list[tuple[str, str, str]]:
    """Copies of a hand-written first memory that differ only in case or trailing punctuation."""
    out = [(S, "case", text.lower())]
    if not text.endswith((".", "!", "?")):
        out.append((S, "punctuation", text + "."))
    return out


def main() -> None:
    pairs: list[dict[str, str]] = []
    seen: set[tuple[str, str]] = set()
    for first, variants in GROUPS:
        written = [(label, category, second, "hand") for label, category, second in variants]
        copies = [(label, category, second, "derived") for label, category, second in derived(first)]
        for label, category, second, made in [*written, *copies]:
            if (first, second) in seen or first == second:
                continue
            seen.add((first, second))
            pairs.append({"a": first, "b": second, "label": label, "category": category, "made": made})
    out = Path(__file__).with_name("dedup_pairs.json")
    out.write_text(json.dumps({"pairs": pairs}, indent=1, ensure_ascii=False) + "\n")
    counts: dict[str, int] = {}
    for p in pairs:
        counts[p["label"]] = counts.get(p["label"], 0) + 1
    print(f"{len(pairs)} pairs {counts} -> {out}")


if __name__ == "__main__":
    main()
