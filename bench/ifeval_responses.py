#!/usr/bin/env python3
"""Synthetic responses for every IFEval prompt, for checker-agreement benchmarks.

Reads IFEval's input_data.jsonl (541 prompts) and writes a JSONL of responses, about three per
prompt, crafted from each prompt's instruction_id_list and kwargs so that every instruction is
satisfied in some responses and violated in others. Rows: {"prompt", "response", "key", "variant"}.

The point is not to answer the prompts but to exercise the checker on realistic and on tricky
text: the labels come from the reference implementation (bench/ifeval_reference.py), never from
this script, so a "satisfy" plan that does not in fact satisfy the checker is fine (and often an
interesting case). Variants per prompt:
  good   - tries to satisfy every instruction (strict mode);
  loose  - satisfies the content but adds what loose mode forgives: a chatty first line
           ("Sure, here is ..."), a closing remark line, markdown asterisks around titles, end
           phrases, first words ...;
  bad    - violates one or more instructions, mostly by near misses (off by one, wrong marker,
           curly quotes, "P.S" without its dot, wrong language of the same script, ...);
  mixed  - (4th and later responses, with --per-prompt > 3) each instruction satisfied or
           violated at random.
Each instruction is rendered with a style picked at random from a per-instruction list that
includes the edge cases of the checker spec (*** separators, * and - bullets, highlighted
sections, <<titles>>, P.S./P.P.S, ```json fences, abbreviations like "Dr." and "e.g." and numbers
like "3.5" for sentence counting, capitalised words with contractions for capital_word_frequency,
text in 22 languages and wrong-language variants, lower/upper case, quotation wrapping, ...).
The "variant" field records the plan: "<kind>|<id>#<index>=<sat|vio>:<style>;...".
A few extra rows hold empty and whitespace-only responses.

Deterministic: every response uses its own random.Random seeded from (--seed, key, variant).
Standard library only (Python 3.11).

Usage: python3 bench/ifeval_responses.py [--input input_data.jsonl] [--out responses.jsonl]
                                         [--seed 1234] [--per-prompt 3]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
from dataclasses import dataclass, field

DEFAULT_INPUT = "/work/shared/data/ifeval/input_data.jsonl"

# --------------------------------------------------------------------------------------------
# Text banks
# --------------------------------------------------------------------------------------------

# English clauses: lower-case start, no commas, no final punctuation. Sentences are made of one
# to three clauses. Kept neutral so they read as plausible filler for any prompt.
CLAUSES = [
    "this idea is simple to explain",
    "many people enjoy it for good reasons",
    "the main goal is to keep things clear",
    "we looked at the problem from several angles",
    "a short example makes the point easier to see",
    "good planning saves a lot of time later",
    "the details matter more than most people think",
    "every step builds on the one before it",
    "small changes can lead to big results",
    "the team worked hard to finish on time",
    "this approach has clear benefits for everyone",
    "you should start with the basics",
    "the final result should be easy to read",
    "there are a few things to keep in mind",
    "history shows how much can change in a decade",
    "a friendly tone helps the message land",
    "the story begins on a quiet morning",
    "readers want facts they can trust",
    "simple words often work best",
    "a clear structure guides the reader",
    "most experts agree on this point",
    "the numbers tell an interesting story",
    "nobody expected such a strong response",
    "the weather was cold but bright that day",
    "an honest answer is always the best answer",
    "the market keeps changing every year",
    "each part covers one main topic",
    "the last part sums up the key ideas",
    "practice makes the whole process faster",
    "students learn best when they are curious",
    "local shops depend on loyal customers",
    "the city looks different at night",
    "travel opens the mind to new ideas",
    "music can lift the mood of a room",
    "healthy food gives us energy for the day",
    "this product solves a real problem",
    "the price is fair for what you get",
    "feedback from users shapes the next version",
    "a good leader listens before speaking",
    "the old bridge still stands after a century",
    "my friends often ask me about this topic",
    "we tried three different methods last month",
    "it's worth taking a second look",
    "they don't always agree with each other",
    "we'll come back to this point later",
    "that's why the first draft was so short",
    "the report was shared with the whole group",
    "our neighbors planted a garden last spring",
    "the children walked to school together",
    "the museum opens its doors every morning",
    # Letter-poor clauses (no e / o / p / c), so that letter "less than" plans can be met.
    "kids laugh and play all day",
    "rain falls in a calm way",
    "a big dog ran around our yard",
    "our town has a small park",
    "birds sing at dawn",
    "it is a good day for a walk",
    "you can do it if you try",
    "a cool wind blows from a bay",
    "this plan is short and smart",
    "such a trip is worth it",
    "our goal is to stay calm",
    "kind words go a long way",
    "it was a long trip but worth it",
    "a child draws a cat with a hat",
    "that is all you must know",
    "fun is part of this",
    "all kids want a tiny puppy",
    "a hungry turtle walks slowly",
    "that day was warm and lazy",
    "birds fly high in a bright sky",
]

# Whole sentences with the punctuation that makes sentence counting and word tokenisation hard
# (abbreviations, initials, decimal numbers, ellipses, quotes, contractions). Some hold commas;
# they are removed when a plan forbids commas.
TRICKY_SENTENCES = [
    "Dr. Smith said the results would be ready at 3.5 p.m. on Friday.",
    "We need a few basics, e.g. water and bread.",
    "The plan costs approx. 20 dollars per person.",
    "Mr. Lee and Mrs. Park met at the St. Louis office.",
    "Version 2.0 is faster than version 1.5 in most tests.",
    "The U.S. team won the match in Jan. last year.",
    "It's a simple idea; we'll try it soon.",
    "Wait... is that really true?",
    "She asked \"Are we there yet?\" and smiled.",
    "Room No. 5 is on the left.",
    "The meeting starts at 9 a.m. sharp.",
    "See Fig. 3 for the details.",
    "Prof. Brown doesn't agree with that view.",
    "The ratio is about 3.14 to 1.",
    "The author (i.e. the main writer) agrees.",
    "J. R. R. Tolkien wrote long books.",
    "Prices rose by 2.5% in 2023 vs. 2022.",
    "Is this the end? Not quite!",
    "Our office is at 12 Main St. in the old town.",
    "The package weighs 1,250 grams, which is a lot.",
]

# Sentences for capital_word_frequency: words that nltk.word_tokenize splits or keeps in ways a
# port must copy (AI's -> AI + 's, DON'T -> DO + N'T, WELL-KNOWN stays one token, U.S. ...).
CAPS_WORDS = ["NASA", "USA", "CEO", "AI", "IMPORTANT", "NOTE", "FAQ", "HTML", "DIY", "OK",
              "GREAT", "ALWAYS", "NEVER", "TODAY", "FREE", "NOW", "BEST", "NEW"]
CAPS_TRICKY = ["AI's", "DON'T", "U.S.", "COVID-19", "WELL-KNOWN", "CANNOT", "I'M", "3D"]

# Extra words with rare letters, for letter_frequency "at least" plans.
EXTRA_WORDS = ("quick quiet quest queen quality question unique equal jazz jam jolly joy jump "
               "journey major project yellow young happy every fizzy zebra buzz puzzle wax "
               "box vivid very wave gym myth kayak knock kettle bubble hobby cabin cocoa "
               "coffee pepper puppy apple mammal summer lemon llama hello ball little "
               "tattoo attitude bottle octopus cotton moon motto noon onion banana nine "
               "gang giggle egg igloo hug green teeth tree sleep deep need").split()

# Words used to pad word counts without touching other constraints (letters are checked).
FILLER_WORDS = ["also", "really", "quite", "truly", "simply", "often", "just", "very", "so",
                "now", "still", "indeed", "mostly", "surely", "all", "at", "by", "it", "a"]

CHATTER_FIRST = [
    "Sure, here is my response:",
    "Sure! Here's what you asked for.",
    "Of course. Below is the text.",
    "Here is what I came up with:",
    "Absolutely, happy to help with that!",
]
CHATTER_LAST = [
    "I hope this helps!",
    "Let me know if you want any changes.",
    "Feel free to ask for a revision.",
    "Hope you like it.",
]

# Real sentences in each language that the data asks for (language:response_language).
# Danda (।) and Urdu full stop (۔) are kept as native writers use them: NLTK's Punkt does not see
# them as sentence ends, which is realistic for the number_sentences checker too.
LANG_SENTENCES = {
    "de": [
        "Heute ist das Wetter sehr schön und die Sonne scheint.",
        "Wir gehen am Nachmittag mit den Kindern in den Park.",
        "Das Lernen einer neuen Sprache braucht viel Zeit und Geduld.",
        "Meine Familie wohnt seit vielen Jahren in einer kleinen Stadt.",
        "Am Wochenende kochen wir gern zusammen ein gutes Essen.",
        "Die Arbeit macht mir Spaß, weil ich jeden Tag etwas Neues lerne.",
        "Im Winter fahren viele Menschen in die Berge zum Skifahren.",
        "Bücher sind für mich die besten Freunde.",
    ],
    "it": [
        "Oggi il tempo è molto bello e il sole splende.",
        "Nel pomeriggio andiamo al parco con i bambini.",
        "Imparare una nuova lingua richiede tempo e pazienza.",
        "La mia famiglia vive da molti anni in una piccola città.",
        "Durante il fine settimana cuciniamo insieme una buona cena.",
        "Il lavoro mi piace perché ogni giorno imparo qualcosa di nuovo.",
        "In inverno molte persone vanno in montagna a sciare.",
        "I libri sono i miei migliori amici.",
    ],
    "pt": [
        "Hoje o tempo está muito bonito e o sol está brilhando.",
        "À tarde vamos ao parque com as crianças.",
        "Aprender uma nova língua exige tempo e paciência.",
        "Minha família mora há muitos anos em uma cidade pequena.",
        "No fim de semana gostamos de cozinhar juntos um bom jantar.",
        "Eu gosto do meu trabalho porque aprendo algo novo todos os dias.",
        "No inverno muitas pessoas viajam para as montanhas.",
        "Os livros são os meus melhores amigos.",
    ],
    "fi": [
        "Tänään sää on todella kaunis ja aurinko paistaa.",
        "Iltapäivällä menemme lasten kanssa puistoon.",
        "Uuden kielen oppiminen vaatii aikaa ja kärsivällisyyttä.",
        "Perheeni on asunut pienessä kaupungissa monta vuotta.",
        "Viikonloppuna laitamme mielellämme yhdessä hyvää ruokaa.",
        "Pidän työstäni, koska opin joka päivä jotain uutta.",
        "Talvella monet ihmiset matkustavat pohjoiseen hiihtämään.",
        "Kirjat ovat parhaita ystäviäni.",
    ],
    "ru": [
        "Сегодня погода очень хорошая и светит солнце.",
        "Днём мы идём в парк вместе с детьми.",
        "Изучение нового языка требует времени и терпения.",
        "Моя семья много лет живёт в маленьком городе.",
        "По выходным мы любим вместе готовить вкусный ужин.",
        "Мне нравится моя работа, потому что каждый день я узнаю что-то новое.",
        "Зимой многие люди едут в горы кататься на лыжах.",
        "Книги — мои лучшие друзья.",
    ],
    "bg": [
        "Днес времето е много хубаво и слънцето грее.",
        "Следобед отиваме в парка заедно с децата.",
        "Ученето на нов език изисква време и търпение.",
        "Моето семейство живее от много години в малък град.",
        "През уикенда обичаме да готвим заедно вкусна вечеря.",
        "Харесвам работата си, защото всеки ден научавам нещо ново.",
        "През зимата много хора отиват в планината да карат ски.",
        "Книгите са моите най-добри приятели.",
    ],
    "vi": [
        "Hôm nay thời tiết rất đẹp và mặt trời đang chiếu sáng.",
        "Buổi chiều chúng tôi đưa các con đi chơi công viên.",
        "Học một ngôn ngữ mới cần nhiều thời gian và sự kiên nhẫn.",
        "Gia đình tôi đã sống ở một thành phố nhỏ nhiều năm.",
        "Cuối tuần chúng tôi thích cùng nhau nấu một bữa tối ngon.",
        "Tôi thích công việc của mình vì mỗi ngày tôi học được điều mới.",
        "Vào mùa đông nhiều người đi du lịch lên núi.",
        "Sách là những người bạn tốt nhất của tôi.",
    ],
    "ko": [
        "오늘은 날씨가 정말 좋고 햇빛이 밝게 비칩니다.",
        "오후에 우리는 아이들과 함께 공원에 갑니다.",
        "새로운 언어를 배우는 것은 시간과 인내가 필요합니다.",
        "우리 가족은 작은 도시에서 오랫동안 살았습니다.",
        "주말에는 함께 맛있는 저녁을 만드는 것을 좋아합니다.",
        "저는 매일 새로운 것을 배울 수 있어서 제 일을 좋아합니다.",
        "겨울에는 많은 사람들이 산으로 스키를 타러 갑니다.",
        "책은 저의 가장 좋은 친구입니다.",
    ],
    "sw": [
        "Leo hali ya hewa ni nzuri sana na jua linawaka.",
        "Mchana tunakwenda bustanini pamoja na watoto.",
        "Kujifunza lugha mpya kunahitaji muda na uvumilivu.",
        "Familia yangu imeishi katika mji mdogo kwa miaka mingi.",
        "Mwishoni mwa wiki tunapenda kupika chakula kizuri pamoja.",
        "Ninapenda kazi yangu kwa sababu kila siku najifunza kitu kipya.",
        "Wakati wa mvua wakulima wengi hupanda mahindi na maharage.",
        "Vitabu ni marafiki zangu bora.",
    ],
    "hi": [
        "आज मौसम बहुत अच्छा है और धूप खिली हुई है।",
        "दोपहर में हम बच्चों के साथ पार्क जाते हैं।",
        "नई भाषा सीखने के लिए समय और धैर्य चाहिए।",
        "मेरा परिवार कई सालों से एक छोटे शहर में रहता है।",
        "सप्ताहांत में हम साथ मिलकर स्वादिष्ट खाना बनाते हैं।",
        "मुझे अपना काम पसंद है क्योंकि मैं हर दिन कुछ नया सीखता हूँ।",
        "सर्दियों में बहुत से लोग पहाड़ों पर घूमने जाते हैं।",
        "किताबें मेरी सबसे अच्छी दोस्त हैं।",
    ],
    "mr": [
        "आज हवामान खूप छान आहे आणि ऊन पडले आहे.",
        "दुपारी आम्ही मुलांसोबत बागेत जातो.",
        "नवीन भाषा शिकण्यासाठी वेळ आणि संयम लागतो.",
        "माझे कुटुंब अनेक वर्षांपासून एका लहान शहरात राहते.",
        "आठवड्याच्या शेवटी आम्हाला एकत्र स्वयंपाक करायला आवडते.",
        "मला माझे काम आवडते कारण मी दररोज काहीतरी नवीन शिकतो.",
        "हिवाळ्यात बरेच लोक डोंगरावर फिरायला जातात.",
        "पुस्तके माझे सर्वात चांगले मित्र आहेत.",
    ],
    "ne": [
        "आज मौसम धेरै राम्रो छ र घाम लागेको छ।",
        "दिउँसो हामी बच्चाहरूसँग पार्क जान्छौं।",
        "नयाँ भाषा सिक्न समय र धैर्य चाहिन्छ।",
        "मेरो परिवार धेरै वर्षदेखि एउटा सानो सहरमा बस्छ।",
        "सप्ताहन्तमा हामी सँगै मिठो खाना पकाउन मन पराउँछौं।",
        "मलाई मेरो काम मन पर्छ किनभने म हरेक दिन केही नयाँ कुरा सिक्छु।",
        "जाडोमा धेरै मानिसहरू हिमाल घुम्न जान्छन्।",
        "किताबहरू मेरा सबैभन्दा राम्रा साथी हुन्।",
    ],
    "bn": [
        "আজ আবহাওয়া খুব সুন্দর এবং রোদ উঠেছে।",
        "বিকেলে আমরা বাচ্চাদের সঙ্গে পার্কে যাই।",
        "নতুন ভাষা শিখতে সময় এবং ধৈর্য দরকার।",
        "আমার পরিবার অনেক বছর ধরে একটি ছোট শহরে থাকে।",
        "সপ্তাহের শেষে আমরা একসাথে মজার খাবার রান্না করতে ভালোবাসি।",
        "আমি আমার কাজ পছন্দ করি কারণ প্রতিদিন নতুন কিছু শিখি।",
        "শীতকালে অনেক মানুষ পাহাড়ে বেড়াতে যায়।",
        "বই আমার সবচেয়ে ভালো বন্ধু।",
    ],
    "gu": [
        "આજે હવામાન ખૂબ સરસ છે અને તડકો નીકળ્યો છે.",
        "બપોરે અમે બાળકો સાથે બગીચામાં જઈએ છીએ.",
        "નવી ભાષા શીખવા માટે સમય અને ધીરજ જોઈએ.",
        "મારો પરિવાર ઘણાં વર્ષોથી એક નાના શહેરમાં રહે છે.",
        "અઠવાડિયાના અંતે અમને સાથે મળીને સ્વાદિષ્ટ ભોજન બનાવવું ગમે છે.",
        "મને મારું કામ ગમે છે કારણ કે હું દરરોજ કંઈક નવું શીખું છું.",
        "શિયાળામાં ઘણા લોકો પર્વતો પર ફરવા જાય છે.",
        "પુસ્તકો મારા સૌથી સારા મિત્રો છે.",
    ],
    "pa": [
        "ਅੱਜ ਮੌਸਮ ਬਹੁਤ ਵਧੀਆ ਹੈ ਅਤੇ ਧੁੱਪ ਨਿਕਲੀ ਹੋਈ ਹੈ।",
        "ਦੁਪਹਿਰ ਨੂੰ ਅਸੀਂ ਬੱਚਿਆਂ ਨਾਲ ਬਾਗ਼ ਵਿੱਚ ਜਾਂਦੇ ਹਾਂ।",
        "ਨਵੀਂ ਭਾਸ਼ਾ ਸਿੱਖਣ ਲਈ ਸਮਾਂ ਅਤੇ ਸਬਰ ਚਾਹੀਦਾ ਹੈ।",
        "ਮੇਰਾ ਪਰਿਵਾਰ ਕਈ ਸਾਲਾਂ ਤੋਂ ਇੱਕ ਛੋਟੇ ਸ਼ਹਿਰ ਵਿੱਚ ਰਹਿੰਦਾ ਹੈ।",
        "ਹਫ਼ਤੇ ਦੇ ਅੰਤ ਵਿੱਚ ਅਸੀਂ ਮਿਲ ਕੇ ਸੁਆਦੀ ਖਾਣਾ ਬਣਾਉਂਦੇ ਹਾਂ।",
        "ਮੈਨੂੰ ਆਪਣਾ ਕੰਮ ਪਸੰਦ ਹੈ ਕਿਉਂਕਿ ਮੈਂ ਹਰ ਰੋਜ਼ ਕੁਝ ਨਵਾਂ ਸਿੱਖਦਾ ਹਾਂ।",
        "ਸਰਦੀਆਂ ਵਿੱਚ ਬਹੁਤ ਲੋਕ ਪਹਾੜਾਂ ਵੱਲ ਘੁੰਮਣ ਜਾਂਦੇ ਹਨ।",
        "ਕਿਤਾਬਾਂ ਮੇਰੀਆਂ ਸਭ ਤੋਂ ਵਧੀਆ ਦੋਸਤ ਹਨ।",
    ],
    "ta": [
        "இன்று வானிலை மிகவும் நன்றாக இருக்கிறது.",
        "மதியம் நாங்கள் குழந்தைகளுடன் பூங்காவிற்குச் செல்கிறோம்.",
        "புதிய மொழியைக் கற்க நேரமும் பொறுமையும் தேவை.",
        "என் குடும்பம் பல ஆண்டுகளாக ஒரு சிறிய நகரத்தில் வசிக்கிறது.",
        "வார இறுதியில் நாங்கள் ஒன்றாகச் சுவையான உணவு சமைக்க விரும்புகிறோம்.",
        "நான் ஒவ்வொரு நாளும் புதிதாக ஏதாவது கற்றுக்கொள்வதால் என் வேலையை விரும்புகிறேன்.",
        "குளிர்காலத்தில் பலர் மலைகளுக்குச் சுற்றுலா செல்கிறார்கள்.",
        "புத்தகங்கள் என் சிறந்த நண்பர்கள்.",
    ],
    "te": [
        "ఈ రోజు వాతావరణం చాలా బాగుంది.",
        "మధ్యాహ్నం మేము పిల్లలతో కలిసి పార్కుకు వెళ్తాము.",
        "కొత్త భాష నేర్చుకోవడానికి సమయం మరియు ఓపిక అవసరం.",
        "మా కుటుంబం చాలా సంవత్సరాలుగా ఒక చిన్న పట్టణంలో నివసిస్తోంది.",
        "వారాంతంలో మేము కలిసి రుచికరమైన భోజనం వండటానికి ఇష్టపడతాము.",
        "నేను ప్రతి రోజు కొత్తది నేర్చుకుంటాను కాబట్టి నా పని నాకు ఇష్టం.",
        "చలికాలంలో చాలా మంది కొండలకు విహారయాత్రకు వెళ్తారు.",
        "పుస్తకాలు నా మంచి స్నేహితులు.",
    ],
    "kn": [
        "ಇಂದು ಹವಾಮಾನ ತುಂಬಾ ಚೆನ್ನಾಗಿದೆ.",
        "ಮಧ್ಯಾಹ್ನ ನಾವು ಮಕ್ಕಳೊಂದಿಗೆ ಉದ್ಯಾನವನಕ್ಕೆ ಹೋಗುತ್ತೇವೆ.",
        "ಹೊಸ ಭಾಷೆಯನ್ನು ಕಲಿಯಲು ಸಮಯ ಮತ್ತು ತಾಳ್ಮೆ ಬೇಕು.",
        "ನನ್ನ ಕುಟುಂಬ ಅನೇಕ ವರ್ಷಗಳಿಂದ ಒಂದು ಸಣ್ಣ ಪಟ್ಟಣದಲ್ಲಿ ವಾಸಿಸುತ್ತಿದೆ.",
        "ವಾರಾಂತ್ಯದಲ್ಲಿ ನಾವು ಒಟ್ಟಿಗೆ ರುಚಿಯಾದ ಊಟ ಮಾಡಲು ಇಷ್ಟಪಡುತ್ತೇವೆ.",
        "ನಾನು ಪ್ರತಿದಿನ ಹೊಸದನ್ನು ಕಲಿಯುವುದರಿಂದ ನನ್ನ ಕೆಲಸ ನನಗೆ ಇಷ್ಟ.",
        "ಚಳಿಗಾಲದಲ್ಲಿ ಅನೇಕ ಜನರು ಬೆಟ್ಟಗಳಿಗೆ ಪ್ರವಾಸ ಹೋಗುತ್ತಾರೆ.",
        "ಪುಸ್ತಕಗಳು ನನ್ನ ಉತ್ತಮ ಸ್ನೇಹಿತರು.",
    ],
    "ar": [
        "الطقس اليوم جميل جدا والشمس مشرقة.",
        "في المساء نذهب إلى الحديقة مع الأطفال.",
        "تعلم لغة جديدة يحتاج إلى الوقت والصبر.",
        "تعيش عائلتي في مدينة صغيرة منذ سنوات طويلة.",
        "في عطلة نهاية الأسبوع نحب أن نطبخ معا عشاء لذيذا.",
        "أحب عملي لأنني أتعلم شيئا جديدا كل يوم.",
        "في الشتاء يسافر كثير من الناس إلى الجبال.",
        "الكتب هي أفضل أصدقائي.",
    ],
    "fa": [
        "امروز هوا بسیار خوب است و خورشید می‌درخشد.",
        "بعد از ظهر با بچه‌ها به پارک می‌رویم.",
        "یادگیری یک زبان تازه به زمان و صبر نیاز دارد.",
        "خانواده من سال‌هاست که در یک شهر کوچک زندگی می‌کند.",
        "آخر هفته دوست داریم با هم یک شام خوشمزه بپزیم.",
        "من کارم را دوست دارم چون هر روز چیز تازه‌ای یاد می‌گیرم.",
        "در زمستان بسیاری از مردم به کوهستان سفر می‌کنند.",
        "کتاب‌ها بهترین دوستان من هستند.",
    ],
    "ur": [
        "آج موسم بہت اچھا ہے اور دھوپ نکلی ہوئی ہے۔",
        "دوپہر کو ہم بچوں کے ساتھ پارک جاتے ہیں۔",
        "نئی زبان سیکھنے کے لیے وقت اور صبر چاہیے۔",
        "میرا خاندان کئی سالوں سے ایک چھوٹے شہر میں رہتا ہے۔",
        "ہفتے کے آخر میں ہم مل کر مزیدار کھانا پکاتے ہیں۔",
        "مجھے اپنا کام پسند ہے کیونکہ میں ہر روز کچھ نیا سیکھتا ہوں۔",
        "سردیوں میں بہت سے لوگ پہاڑوں کی سیر کو جاتے ہیں۔",
        "کتابیں میری سب سے اچھی دوست ہیں۔",
    ],
    "th": [
        "วันนี้อากาศดีมากและแดดก็สดใส",
        "ตอนบ่ายเราพาเด็กๆ ไปเที่ยวสวนสาธารณะ",
        "การเรียนภาษาใหม่ต้องใช้เวลาและความอดทน",
        "ครอบครัวของฉันอาศัยอยู่ในเมืองเล็กๆ มาหลายปีแล้ว",
        "ในวันหยุดสุดสัปดาห์เราชอบทำอาหารอร่อยด้วยกัน",
        "ฉันชอบงานของฉันเพราะได้เรียนรู้สิ่งใหม่ทุกวัน",
        "ในฤดูหนาวหลายคนชอบเดินทางไปเที่ยวภูเขา",
        "หนังสือคือเพื่อนที่ดีที่สุดของฉัน",
    ],
}

# Wrong-language variants: mostly a language of the same script (hard for detectors and a
# realistic model mistake), otherwise English.
CONFUSABLE = {
    "hi": "mr", "mr": "hi", "ne": "hi", "bn": "hi", "gu": "hi", "pa": "hi",
    "bg": "ru", "ru": "bg", "fa": "ar", "ar": "fa", "ur": "fa",
    "pt": "it", "it": "pt", "de": "fi", "fi": "de",
    "kn": "te", "te": "kn", "ta": "kn", "th": "vi", "vi": "pt", "ko": "en", "sw": "en",
}

# Punkt English abbreviations (subset of punkt_tab/english/abbrev_types.txt) used only by this
# script's rough sentence estimate (the reference counts with NLTK itself).
PUNKT_ABBREV = set("""dr mr mrs ms prof st jr sr inc ltd co corp vs jan feb aug sept oct nov dec
gen col lt maj sen rep reps u.s u.s.a p.m a.m ph.d u.k u.n d.c n.y calif fla wash ave bros
messrs cie ft mg yr""".split())


def words(text: str) -> int:
    """Word count exactly as IFEval (`\\w+` runs, Unicode)."""
    return len(re.findall(r"\w+", text))


def approx_sentences(text: str) -> int:
    """Rough Punkt-like sentence count, only to aim plans at a boundary."""
    n = 0
    for tok in re.findall(r"\S+", text):
        core = tok.rstrip("\"')]*»”’")
        if not core or core[-1] not in ".!?":
            continue
        stem = core.rstrip(".!?").lower().lstrip("(\"'*[")
        if core.endswith(".") and not core.endswith("..") and (
            stem in PUNKT_ABBREV or re.fullmatch(r"[a-z]", stem)
        ):
            continue
        n += 1
    tail = text.rstrip()
    if tail and tail.rstrip("\"')]*»”’")[-1:] not in (".", "!", "?"):
        n += 1
    return max(n, 1 if text.strip() else 0)


def caps_count(text: str) -> int:
    """Rough count of upper-case tokens (the reference uses nltk.word_tokenize)."""
    n = 0
    for tok in re.split(r"[\s,;:!?()\[\]{}\"*<>]+", text):
        tok = tok.rstrip(".")
        for part in re.split(r"(?=n't|N'T)|'(?=[sSmMdD]\b|ll|LL|re|RE|ve|VE)", tok):
            if part and part.isupper():
                n += 1
    return n


# --------------------------------------------------------------------------------------------
# Document model: a response is built as a structure, then rendered; counts are adjusted by
# editing sentences and re-rendering.
# --------------------------------------------------------------------------------------------


@dataclass
class Sentence:
    clauses: list = field(default_factory=list)  # English clauses (joined with "and")
    raw: str | None = None  # a whole sentence kept as is (tricky or non-English)
    end: str = "."
    extra: list = field(default_factory=list)  # words appended before the final punctuation
    lead: str | None = None  # forced first word (nth_paragraph_first_word)
    wrap: str = ""  # highlight marker put around the sentence ("*", "**")
    fixed: bool = False  # exact phrase (end phrase, constrained answer): never edited

    def render(self) -> str:
        if self.raw is not None:
            m = re.search(r"[.!?।۔]*$", self.raw)
            body, end = self.raw[: m.start()], m.group(0)
            if self.extra:
                body = body + " " + " ".join(self.extra)
            text = body + end
        else:
            body = " and ".join(self.clauses)
            if self.extra:
                body = (body + " " + " ".join(self.extra)).strip()
            text = body[:1].upper() + body[1:] + self.end
        if self.lead is not None:
            text = self.lead + " " + text[:1].lower() + text[1:]
        if self.wrap:
            text = self.wrap + text + self.wrap
        return text


@dataclass
class Paragraph:
    sentences: list = field(default_factory=list)
    header: str | None = None  # a line before the text (section headers, highlighted headings)
    bullets: list = field(default_factory=list)  # list lines after the text

    def render(self) -> str:
        lines = []
        if self.header is not None:
            lines.append(self.header)
        text = " ".join(s.render() for s in self.sentences)
        if text:
            lines.append(text)
        lines.extend(self.bullets)
        return "\n".join(lines)


@dataclass
class Body:
    paragraphs: list = field(default_factory=list)
    sep: str = "\n\n"
    title: str | None = None  # full title line as rendered

    def render(self) -> str:
        text = self.sep.join(p.render() for p in self.paragraphs)
        if self.title is not None:
            text = self.title + "\n\n" + text
        return text

    def sentences(self):
        return [s for p in self.paragraphs for s in p.sentences]


@dataclass
class Response:
    bodies: list = field(default_factory=list)
    two_sep: str = "\n******\n"
    prefix: list = field(default_factory=list)  # lines before the bodies (repeated prompt)
    suffix: list = field(default_factory=list)  # lines after (P.S., end phrase)
    json_style: str | None = None
    case: str | None = None  # "upper", "lower", or a violation style
    comma: str | None = None  # "remove" or "insert"
    quote: str | None = None
    chatter_first: str | None = None
    chatter_last: str | None = None

    def render(self) -> str:
        bodies = [b.render() for b in self.bodies]
        text = self.two_sep.join(bodies)
        if self.json_style:
            text = render_json(self, self.json_style)
        else:
            parts = list(self.prefix) + [text] + list(self.suffix)
            text = "\n\n".join(p for p in parts if p)
        text = apply_case(text, self.case)
        if self.comma == "remove":
            text = re.sub(r",\s?", " ", text).replace("  ", " ")
        elif self.comma == "insert" and "," not in text:
            text = re.sub(r"(\w)( and | but )", r"\1,\2", text, count=1)
            if "," not in text:
                text = re.sub(r"^(\w+) ", r"\1, ", text, count=1, flags=re.M)
        text = apply_quote(text, self.quote)
        if self.chatter_first:
            text = self.chatter_first + "\n" + text
        if self.chatter_last:
            text = text + "\n" + self.chatter_last
        return text

    def all_sentences(self):
        return [s for b in self.bodies for s in b.sentences()]

    def free_sentences(self):
        """Sentences that other instructions may edit (not fixed phrases)."""
        return [s for s in self.all_sentences() if not s.fixed] or self.all_sentences()


def render_json(resp: Response, style: str) -> str:
    """Serialise the response's content as JSON, with the fence and defect that style names."""
    b = resp.bodies[0]
    obj = {}
    if b.title:
        obj["title"] = b.title.strip("<>")
    obj["paragraphs"] = [p.render() for p in b.paragraphs]
    if resp.suffix:
        obj["notes"] = list(resp.suffix)
    body = json.dumps(obj, indent=2, ensure_ascii=False)
    if style == "bare":
        return body
    if style == "fence_json":
        return "```json\n" + body + "\n```"
    if style == "fence_JSON":
        return "```JSON\n" + body + "\n```"
    if style == "fence_plain":
        return "```\n" + body + "\n```"
    if style == "compact":
        return json.dumps(obj, ensure_ascii=False)
    if style == "trailing_text":  # text after the closing fence: strict fails, loose may pass
        return "```json\n" + body + "\n```\nThis JSON follows your format."
    if style == "jsonc":
        return "```jsonc\n" + body + "\n```"
    if style == "single_quotes":
        return repr(obj)
    if style == "trailing_comma":
        return body[:-2] + ",\n}"
    if style == "two_objects":
        return body + "\n" + json.dumps({"extra": True})
    raise ValueError(style)


def apply_case(text: str, case: str | None) -> str:
    if case is None:
        return text
    if case == "upper":
        return text.upper()
    if case == "lower":
        return text.lower()
    if case == "upper_one_lower":  # all caps but one lower-case word
        up = text.upper()
        return re.sub(r"\bTHE\b|\bAND\b|\b[A-Z]{3,}\b", lambda m: m.group(0).lower(), up, count=1)
    if case == "lower_keep_I":  # lower case except the pronoun I / a capital start
        low = text.lower()
        low = re.sub(r"\bi\b", "I", low)
        if not re.search(r"[A-Z]", low):
            low = re.sub(r"[a-z]", lambda m: m.group(0).upper(), low, count=1)
        return low
    if case == "title":
        return text.title()
    raise ValueError(case)


def apply_quote(text: str, style: str | None) -> str:
    if style is None:
        return text
    if style == "double":
        return '"' + text + '"'
    if style == "double_padded":  # whitespace outside the quotes is stripped by the checker
        return '\n "' + text + '" \n'
    if style == "curly":
        return "\u201c" + text + "\u201d"
    if style == "single":
        return "'" + text + "'"
    if style == "open_only":
        return '"' + text
    if style == "after_quote":  # text after the closing quote
        return '"' + text + '"\nThanks for reading.'
    raise ValueError(style)


# --------------------------------------------------------------------------------------------
# Plans: for each instruction a goal (satisfy / violate) and a style
# --------------------------------------------------------------------------------------------

# Styles per instruction id: (satisfying styles, violating styles). "loose" styles are things
# strict mode rejects but loose mode accepts; they are used by the "loose" variant.
STYLES = {
    "punctuation:no_comma": (["remove", "remove_fullwidth"], ["keep", "one_comma"]),
    "detectable_format:title": (
        ["plain", "plain_mid", "padded", "two_on_line"],
        ["single_angle", "blank", "broken", "none", "guillemets"],
    ),
    "detectable_format:number_highlighted_sections": (
        ["star", "double_star", "headings", "mixed", "plus_one", "triple_star"],
        ["minus_one", "empty_stars", "multiline", "underscore"],
    ),
    "detectable_format:number_bullet_lists": (
        ["star", "dash", "mixed", "indented", "star_spaces"],
        ["minus_one", "plus_one", "numbered", "unicode_bullet", "plus_sign", "hr_rule", "bold_lines"],
    ),
    "detectable_format:multiple_sections": (
        ["header", "header_colon", "no_space", "plus_one", "inline"],
        ["minus_one", "roman", "colon_before", "lowercase", "plural"],
    ),
    "detectable_content:number_placeholders": (
        ["plain", "plus_two", "empty_brackets", "md_link"],
        ["minus_one", "braces", "multiline", "angle"],
    ),
    "detectable_content:postscript": (
        ["plain", "lower", "spaced", "bold", "both"],
        ["no_dots", "missing_dot", "word", "wrong_marker"],
    ),
    "length_constraints:number_paragraphs": (
        ["stars_nl", "stars_tight", "stars_inline", "leading_trailing", "four_stars"],
        ["minus_one", "plus_one", "blank_middle", "spaced_stars", "newlines_only"],
    ),
    "length_constraints:nth_paragraph_first_word": (
        ["plain", "quoted", "comma", "upper", "triple_newline"],
        ["wrong_word", "plural", "hyphen", "wrong_count", "bold", "leading_blank"],
    ),
    "length_constraints:number_sentences": (["boundary", "inside"], ["boundary", "far"]),
    "length_constraints:number_words": (["boundary", "inside"], ["boundary", "far"]),
    "keywords:existence": (["plain", "capitalised", "inside_word"], ["omit_one", "omit_all"]),
    "keywords:frequency": (["boundary", "inside", "upper"], ["boundary", "far"]),
    "keywords:forbidden_words": (["avoid", "as_prefix"], ["include", "possessive", "capitalised"]),
    "keywords:letter_frequency": (["boundary", "inside"], ["boundary", "far"]),
    "language:response_language": (["native", "native_short"], ["english", "confusable", "mixed"]),
    "change_case:capital_word_frequency": (["boundary", "tricky"], ["boundary", "far"]),
    "change_case:english_capital": (["upper"], ["upper_one_lower", "lower", "title"]),
    "change_case:english_lowercase": (["lower"], ["lower_keep_I", "title", "upper"]),
    "startend:quotation": (["double", "double_padded"], ["curly", "single", "open_only", "after_quote"]),
    "startend:end_checker": (
        ["plain", "newline", "quoted", "lowercase"],
        ["extra_after", "no_punct", "paraphrase", "mid_text"],
    ),
    "detectable_format:constrained_response": (
        ["yes", "no", "maybe", "with_reason"],
        ["capital", "no_period", "answer_colon"],
    ),
    "detectable_format:json_format": (
        ["bare", "fence_json", "fence_JSON", "fence_plain", "compact"],
        ["jsonc", "single_quotes", "trailing_comma", "two_objects"],
    ),
    "combination:two_responses": (["plain", "labelled"], ["identical", "single", "empty_middle", "three"]),
    "combination:repeat_prompt": (["plain", "different_case", "leading_space"], ["same_line", "truncated", "changed_word"]),
}

# Styles that fail strict mode but that loose mode is meant to rescue (first/last line removal,
# asterisk deletion). Used by the "loose" variant in addition to chatter lines.
LOOSE_STYLES = {
    "detectable_format:title": "bold_title",
    "startend:end_checker": "bold_end",
    "length_constraints:nth_paragraph_first_word": "bold",
    "combination:repeat_prompt": "chatter_line",
    "detectable_format:json_format": "trailing_text",
    "startend:quotation": "chatter_line",
    "detectable_content:postscript": "bold",
}


TOPIC_STOP = set("""to that which who whom for with in on of and or but about from by as is are
the a an my your his her their our its this these those be it i you me we they not no how what
why when where given provide help am can do does""".split())


def topic_of(prompt: str) -> str:
    """A few words naming what the prompt is about, for titles ("Email", "Song Corgi")."""
    m = re.search(r"\babout (?:the |a |an )?(.*)", prompt, re.I)
    text = m.group(1) if m else re.sub(
        r"^\W*(write|create|generate|give me|give|compose|draft|can you|could you|please|"
        r"i need|i want|make|tell me|list|describe|explain)\b", "", prompt.strip(), flags=re.I)
    out = []
    for w in re.findall(r"[A-Za-z][A-Za-z']*|[^\sA-Za-z]", text):
        if not w[0].isalpha():
            if out:
                break
            continue
        if w.lower() in TOPIC_STOP:
            if out:
                break
            continue
        out.append(w)
        if len(out) == 3:
            break
    return " ".join(out) or "My Answer"


class Builder:
    """Builds one response for one input example and one plan."""

    def __init__(self, ex: dict, kind: str, rng: random.Random):
        self.ex = ex
        self.kind = kind
        self.rng = rng
        self.ids = ex["instruction_id_list"]
        self.kw = ex["kwargs"]
        self.topic = topic_of(ex["prompt"])
        # Ranges (lo, hi) the adjustment loop aims at; None = free.
        self.sent_range = None
        self.word_range = None
        self.kw_ranges = {}
        self.letter_ranges = {}
        self.caps_range = None
        self.avoid_substrings = set()
        self.avoid_letters = set()
        self.lang = None  # language of the body sentences (None = English)
        self._decks = {}  # shuffled draw piles, so that sentences repeat as little as possible
        self.plan = []  # (index, goal, style)
        self.kw_upper = set()  # keywords inserted in capitals (frequency counts ignore case)

    # -- plan -----------------------------------------------------------------------------
    def choose_plan(self):
        n = len(self.ids)
        if self.kind == "bad":
            k = self.rng.randint(1, n)
            violate = set(self.rng.sample(range(n), k))
        elif self.kind == "mixed":
            violate = {i for i in range(n) if self.rng.random() < 0.5}
        else:
            violate = set()
        for i, iid in enumerate(self.ids):
            sat, vio = STYLES[iid]
            if i in violate:
                goal, style = "vio", self.rng.choice(vio)
            else:
                goal = "sat"
                style = self.rng.choice(sat)
                if self.kind == "loose" and iid in LOOSE_STYLES and self.rng.random() < 0.6:
                    style = LOOSE_STYLES[iid]
            self.plan.append((i, goal, style))

    # -- ranges helpers -------------------------------------------------------------------
    @staticmethod
    def _merge(rng, lo, hi):
        if rng is None:
            return (lo, hi)
        return (max(rng[0], lo), min(rng[1], hi))

    def _count_target(self, relation, n, goal, style):
        """(lo, hi) for a count with "less than"/"at least" relation, goal and style."""
        big = 10**6
        at_least = relation == "at least"
        want_ok = goal == "sat"
        if at_least == want_ok:  # need count >= n
            if style == "boundary":
                return (n, n)
            if style == "far":
                return (n * 2 + 3, big)
            return (n, n + max(2, n // 3))
        else:  # need count < n
            if n <= 0:
                return (0, 0)
            if style == "boundary":
                return (n - 1, n - 1)
            if style == "far":
                return (0, max(0, n // 3))
            return (max(0, n - 1 - max(2, n // 3)), n - 1)

    # -- building -------------------------------------------------------------------------
    def build(self) -> tuple[str, str]:
        self.choose_plan()
        by_id = {}
        for i, goal, style in self.plan:
            by_id.setdefault(self.ids[i], []).append((i, goal, style))

        # 1. Global text constraints that shape sentence choice.
        for i, goal, style in self.plan:
            iid, kw = self.ids[i], self.kw[i]
            if iid == "keywords:forbidden_words" and goal == "sat":
                self.avoid_substrings.update(w.lower() for w in kw["forbidden_words"])
            elif iid == "keywords:frequency":
                r = self._count_target(kw["relation"], kw["frequency"], goal, style)
                key = kw["keyword"].lower()
                if style == "upper":
                    self.kw_upper.add(key)
                self.kw_ranges[key] = self._merge(self.kw_ranges.get(key), *r)
                if self.kw_ranges[key][1] < 3:
                    self.avoid_substrings.add(key)
            elif iid == "keywords:letter_frequency":
                letter = kw["letter"].lower()
                r = self._count_target(kw["let_relation"], kw["let_frequency"], goal, style)
                self.letter_ranges[letter] = self._merge(self.letter_ranges.get(letter), *r)
                if self.letter_ranges[letter][1] < 20:
                    self.avoid_letters.add(letter)
            elif iid == "length_constraints:number_sentences":
                r = self._count_target(kw["relation"], kw["num_sentences"], goal, style)
                self.sent_range = self._merge(self.sent_range, max(1, r[0]), max(1, r[1]))
            elif iid == "length_constraints:number_words":
                r = self._count_target(kw["relation"], kw["num_words"], goal, style)
                self.word_range = self._merge(self.word_range, max(1, r[0]), max(1, r[1]))
            elif iid == "change_case:capital_word_frequency":
                r = self._count_target(kw["capital_relation"], kw["capital_frequency"], goal,
                                       "boundary" if style == "tricky" else style)
                self.caps_range = self._merge(self.caps_range, *r)
            elif iid == "language:response_language":
                code = kw["language"]
                if goal == "sat":
                    self.lang = code
                elif style == "confusable":
                    self.lang = CONFUSABLE.get(code, "en")
                elif style == "mixed":
                    self.lang = code + "+en"
                else:
                    self.lang = None

        resp = Response()
        n_bodies = 1
        two = by_id.get("combination:two_responses")
        if two:
            _, goal, style = two[0]
            n_bodies = 1 if style == "single" else (3 if style == "three" else 2)
        for b in range(n_bodies):
            resp.bodies.append(self.make_body(by_id, b))
        if two:
            self.apply_two(resp, two[0])

        # End phrases last, so that they end up after postscripts and other suffixes.
        for i, goal, style in sorted(self.plan, key=lambda p: self.ids[p[0]] == "startend:end_checker"):
            self.apply(resp, i, goal, style)

        if self.kind == "loose":
            if self.rng.random() < 0.7 and not resp.chatter_first:
                resp.chatter_first = self.rng.choice(CHATTER_FIRST)
            if self.rng.random() < 0.5:
                resp.chatter_last = self.rng.choice(CHATTER_LAST)
            if self.rng.random() < 0.3:  # markdown bold on a sentence: asterisks loose mode drops
                sents = resp.free_sentences()
                if sents:
                    s = self.rng.choice(sents)
                    s.wrap = s.wrap or "**"
        elif self.kind == "good" and self.rng.random() < 0.08:
            resp.chatter_first = self.rng.choice(CHATTER_FIRST)

        self.adjust(resp)
        variant = self.kind + "|" + ";".join(
            "%s#%d=%s:%s" % (self.ids[i], i, goal, style) for i, goal, style in self.plan)
        return resp.render(), variant

    # -- sentences ------------------------------------------------------------------------
    def clause_ok(self, c: str) -> bool:
        low = c.lower()
        if any(s in low for s in self.avoid_substrings):
            return False
        if any(l in low for l in self.avoid_letters):
            return False
        return True

    def draw(self, name: str, items: list) -> str:
        """Next item of a shuffled pile (refilled when empty)."""
        deck = self._decks.get(name)
        if not deck:
            deck = list(items)
            self.rng.shuffle(deck)
            self._decks[name] = deck
        return deck.pop()

    def clause_pool(self) -> list:
        return [c for c in CLAUSES if self.clause_ok(c)] or CLAUSES[50:]

    def new_sentence(self, allow_tricky=True) -> Sentence:
        lang = self.lang
        if lang and lang != "en":
            code = lang.split("+")[0]
            if lang.endswith("+en") and self.rng.random() < 0.5:
                pass  # English sentence in a mixed-language response
            else:
                return Sentence(raw=self.draw("lang", LANG_SENTENCES[code]))
        if allow_tricky and self.rng.random() < 0.18:
            t = self.draw("tricky", TRICKY_SENTENCES)
            if self.clause_ok(t):
                return Sentence(raw=t)
        pool = self.clause_pool()
        k = self.rng.choice([1, 1, 2, 2, 3])
        end = self.rng.choice([".", ".", ".", ".", "!", "?"]) if self.rng.random() < 0.3 else "."
        clauses = []
        for _ in range(min(k, len(pool))):
            c = self.draw("clause", pool)
            if c not in clauses:
                clauses.append(c)
        return Sentence(clauses=clauses, end=end)

    def default_sentence_count(self) -> int:
        if self.sent_range:
            lo, hi = self.sent_range
            return max(1, min(lo if lo > 0 else 1, 200))
        if self.word_range:
            lo, hi = self.word_range
            target = lo if lo > 0 else hi
            return max(1, min(120, target // 14))
        return self.rng.randint(3, 8)

    def make_body(self, by_id, index) -> Body:
        body = Body()
        n_sent = max(1, self.default_sentence_count() // (1 if index == 0 else 2))
        n_par = self.rng.randint(1, 3)
        for iid in ("length_constraints:number_paragraphs", "length_constraints:nth_paragraph_first_word"):
            for i, goal, style in by_id.get(iid, []):
                n_par = self.kw[i]["num_paragraphs"]
        sents = [self.new_sentence() for _ in range(max(n_sent, n_par))]
        per = [[] for _ in range(n_par)]
        for j, s in enumerate(sents):
            per[j * n_par // len(sents)].append(s)
        body.paragraphs = [Paragraph(sentences=p) for p in per]
        return body

    # -- instructions ---------------------------------------------------------------------
    def apply_two(self, resp, plan):
        _, goal, style = plan
        if style == "identical":
            resp.bodies[1] = resp.bodies[0]
        elif style == "empty_middle":
            resp.two_sep = "\n******\n******\n"
        elif style == "labelled":
            resp.bodies[0].paragraphs[0].header = "Response 1"
            resp.bodies[1].paragraphs[0].header = "Response 2"

    def apply(self, resp: Response, i: int, goal: str, style: str):
        iid, kw, rng = self.ids[i], self.kw[i], self.rng
        body = resp.bodies[0]
        last_par = resp.bodies[-1].paragraphs[-1]

        if iid == "punctuation:no_comma":
            if goal == "sat":
                resp.comma = "remove"
                if style == "remove_fullwidth":  # full-width commas are not ASCII commas
                    s = rng.choice(resp.free_sentences())
                    s.extra.append("\uff0c and more")
            else:
                resp.comma = "insert"
                if style == "one_comma":
                    s = rng.choice(resp.free_sentences())
                    s.extra.append(", indeed")

        elif iid == "detectable_format:title":
            t = self.title_text()
            lines = {
                "plain": "<<%s>>" % t, "plain_mid": None, "padded": "<<  %s  >>" % t,
                "two_on_line": "<<%s>> and <<%s Again>>" % (t, t), "single_angle": "<%s>" % t,
                "blank": "<< >>", "broken": "<<%s\n%s>>" % (t, t), "none": None,
                "guillemets": "\u00ab%s\u00bb" % t, "bold_title": "**<<%s>>**" % t,
            }
            for b in resp.bodies:
                b.title = lines[style]
            if style == "plain_mid":
                body.paragraphs[-1].header = "<<%s>>" % t
            elif style == "none":
                body.title = t.title()

        elif iid == "detectable_format:number_highlighted_sections":
            n = kw["num_highlights"]
            count = {"plus_one": n + 1, "minus_one": max(0, n - 1)}.get(style, n)
            if style == "triple_star":  # ***x*** counts twice
                count = (n + 1) // 2
            sents = resp.free_sentences()
            wrap = {"star": "*", "double_star": "**", "triple_star": "***", "plus_one": "*",
                    "minus_one": "*", "mixed": None}.get(style)
            if style in ("headings", "empty_stars", "multiline", "underscore"):
                pars = [p for b in resp.bodies for p in b.paragraphs]
                for j in range(count):
                    p = pars[j % len(pars)]
                    label = "%s part %d" % (self.title_text(), j + 1)
                    if style == "headings":
                        h = "**%s**" % label
                    elif style == "empty_stars":
                        h = "* *" if j else "*%s*" % label
                    elif style == "multiline":
                        h = "*%s\n%s*" % (label, "continued")
                    else:
                        h = "_%s_" % label
                    p.header = h if p.header is None else p.header + "\n" + h
            else:
                while len(sents) < count:
                    s = self.new_sentence(allow_tricky=False)
                    last_par.sentences.append(s)
                    sents.append(s)
                for j, s in enumerate(rng.sample(sents, count)):
                    s.wrap = wrap or ("*" if j % 2 else "**")

        elif iid == "detectable_format:number_bullet_lists":
            n = kw["num_bullets"]
            count = {"minus_one": max(0, n - 1), "plus_one": n + 1}.get(style, n)
            items = self.bullet_items(count)
            marks = {"star": "* ", "dash": "- ", "indented": "  * ", "star_spaces": "*   ",
                     "numbered": None, "unicode_bullet": "\u2022 ", "plus_sign": "+ ",
                     "hr_rule": "* ", "bold_lines": None, "minus_one": "* ", "plus_one": "- "}
            lines = []
            for j, it in enumerate(items):
                if style == "mixed":
                    lines.append(("* " if j % 2 else "- ") + it)
                elif style == "numbered":
                    lines.append("%d. %s" % (j + 1, it))
                elif style == "bold_lines":
                    lines.append("**%s**" % it)
                else:
                    lines.append(marks[style] + it)
            if style == "hr_rule":  # a markdown rule line also counts as a "-" bullet
                lines.append("---")
            target = body.paragraphs[min(1, len(body.paragraphs) - 1)]
            target.bullets.extend(lines)

        elif iid == "detectable_format:multiple_sections":
            spl, n = kw["section_spliter"], kw["num_sections"]
            count = {"plus_one": n + 1, "minus_one": max(0, n - 1)}.get(style, n)
            pars = body.paragraphs
            while len(pars) < count:
                pars.append(Paragraph(sentences=[self.new_sentence()]))
            for j in range(count):
                k = j + 1
                h = {
                    "header": "%s %d" % (spl, k), "header_colon": "%s %d: %s" % (spl, k, self.title_text()),
                    "no_space": "%s%d" % (spl, k), "plus_one": "%s %d" % (spl, k),
                    "minus_one": "%s %d" % (spl, k), "roman": "%s %s" % (spl, "I II III IV V VI VII VIII IX X".split()[min(j, 9)]),
                    "colon_before": "%s: %d" % (spl, k), "lowercase": "%s %d" % (spl.lower() if spl != spl.lower() else spl.upper(), k),
                    "plural": "%ss %d" % (spl, k), "inline": None,
                }[style]
                if style == "inline":  # section marker in running text
                    pars[j].sentences[0].lead = "%s %d." % (spl, k)
                else:
                    pars[j].header = h if pars[j].header is None else h + "\n" + pars[j].header

        elif iid == "detectable_content:number_placeholders":
            n = kw["num_placeholders"]
            count = {"plus_two": n + 2, "minus_one": max(0, n - 1)}.get(style, n)
            names = ["name", "address", "date", "phone number", "company", "city", "email",
                     "position", "school", "years", "skill", "title", "manager", "team", "link",
                     "amount", "country", "product", "time", "signature"]
            sents = resp.free_sentences()
            for j in range(count):
                nm = names[j % len(names)] + ("" if j < len(names) else " %d" % j)
                ph = {"braces": "{%s}", "angle": "<%s>", "multiline": "[%s\n]"}.get(style, "[%s]") % nm
                if style == "empty_brackets" and j == 0:
                    ph = "[]"
                elif style == "md_link" and j == 0:
                    ph = "[%s](https://example.com)" % nm
                sents[j % len(sents)].extra.append(ph)

        elif iid == "detectable_content:postscript":
            marker = kw["postscript_marker"]
            note = self.note_sentence()
            pps = marker == "P.P.S"
            text = {
                "plain": ("P.P.S " if pps else "P.S. ") + note,
                "lower": ("p.p.s. " if pps else "p.s. ") + note,
                "spaced": ("P. P. S. " if pps else "P. S. ") + note,
                "bold": ("**P.P.S.** " if pps else "**P.S.** ") + note,
                "both": "P.S. " + note + "\n\nP.P.S. " + self.note_sentence(),
                "no_dots": ("PPS " if pps else "PS: ") + note,
                "missing_dot": ("P.P " if pps else "P.S ") + note,
                "word": "Postscript: " + note,
                "wrong_marker": ("P.S. " if pps else "PS. ") + note,
            }[style]
            resp.suffix.append(text)

        elif iid == "length_constraints:number_paragraphs":
            n = kw["num_paragraphs"]
            target = {"minus_one": max(1, n - 1), "plus_one": n + 1}.get(style, n)
            self.set_paragraphs(resp, target)
            sep = {"stars_nl": "\n\n***\n\n", "stars_tight": "\n***\n", "stars_inline": " *** ",
                   "leading_trailing": "\n\n***\n\n", "four_stars": "\n\n****\n\n",
                   "minus_one": "\n\n***\n\n", "plus_one": "\n***\n", "blank_middle": "\n\n***\n\n",
                   "spaced_stars": "\n\n* * *\n\n", "newlines_only": "\n\n"}[style]
            for b in resp.bodies:
                b.sep = sep
            if style == "leading_trailing":
                resp.prefix.insert(0, "***")
                resp.suffix.append("***")
            elif style == "blank_middle":
                body.sep = "\n\n***\n\n"
                body.paragraphs[0].bullets.append("\n***")

        elif iid == "length_constraints:nth_paragraph_first_word":
            n, nth, fw = kw["num_paragraphs"], kw["nth_paragraph"], kw["first_word"]
            target = n + 1 if style == "wrong_count" else n
            self.set_paragraphs(resp, target)
            word = fw.capitalize()
            lead = {"plain": word, "quoted": "'%s'" % word, "comma": word + ",",
                    "upper": word.upper(), "triple_newline": word, "wrong_word": "However",
                    "plural": word + "s", "hyphen": word + "-based", "wrong_count": word,
                    "bold": "**%s**" % word, "leading_blank": word}[style]
            pars = body.paragraphs
            pars[min(nth, len(pars)) - 1].sentences[0].lead = lead
            if style == "triple_newline":
                body.sep = "\n\n\n"
            elif style == "leading_blank":  # a blank part before the first paragraph
                resp.prefix.insert(0, "\n")

        elif iid == "keywords:existence":
            kws = list(kw["keywords"])
            if style == "omit_one":
                kws = kws[:-1]
            elif style == "omit_all":
                kws = []
            sents = resp.free_sentences()
            for j, w in enumerate(kws):
                if style == "capitalised":
                    w = w.capitalize()
                elif style == "inside_word":  # substring search: "cat" is found in "cats"
                    w = w + "s"
                sents[j % len(sents)].extra.append("with " + w if self.lang is None else w)

        elif iid == "keywords:forbidden_words":
            words_ = kw["forbidden_words"]
            sents = resp.free_sentences()
            s = rng.choice(sents)
            if goal == "sat" and style == "as_prefix":  # \b: "rocky" does not contain word "rock"
                s.extra.append(words_[0] + "ish" if not words_[0].endswith("s") else words_[0] + "y")
            elif goal == "vio":
                w = rng.choice(words_)
                s.extra.append({"include": w, "possessive": w + "'s", "capitalised": w.capitalize()}[style])

        elif iid == "language:response_language":
            if style == "native_short":  # a single sentence in the language
                for b in resp.bodies:
                    for p in b.paragraphs:
                        del p.sentences[1:]

        elif iid == "change_case:capital_word_frequency":
            if style == "tricky":
                s = rng.choice(resp.free_sentences())
                s.extra.append(rng.choice(CAPS_TRICKY))

        elif iid == "change_case:english_capital":
            resp.case = style

        elif iid == "change_case:english_lowercase":
            resp.case = style

        elif iid == "startend:quotation":
            resp.quote = "double" if style == "chatter_line" else style
            if style == "chatter_line":
                resp.chatter_first = rng.choice(CHATTER_FIRST)

        elif iid == "startend:end_checker":
            ph = kw["end_phrase"]
            text = {"plain": ph, "newline": ph, "quoted": '"%s"' % ph, "lowercase": ph.lower(),
                    "bold_end": "**%s**" % ph, "extra_after": ph + " Thanks again.",
                    "no_punct": ph.rstrip(".?!"), "paraphrase": "Anything else I can do for you?",
                    "mid_text": ph}[style]
            if style == "plain" and not resp.suffix:
                last_par.sentences.append(Sentence(raw=text, fixed=True))
            elif style == "mid_text":
                body.paragraphs[0].sentences.insert(0, Sentence(raw=text, fixed=True))
            else:
                resp.suffix.append(text)

        elif iid == "detectable_format:constrained_response":
            ans = {"yes": "My answer is yes.", "no": "My answer is no.", "maybe": "My answer is maybe.",
                   "with_reason": "My answer is no.", "capital": "My answer is Yes.",
                   "no_period": "My answer is yes", "answer_colon": "Answer: yes."}[style]
            if style == "with_reason":
                body.paragraphs[0].sentences.append(Sentence(raw=ans, fixed=True))
            else:  # the whole response is the phrase
                resp.bodies = [Body(paragraphs=[Paragraph(sentences=[Sentence(raw=ans, fixed=True)])])]

        elif iid == "detectable_format:json_format":
            resp.json_style = style

        elif iid == "combination:repeat_prompt":
            p = kw["prompt_to_repeat"]
            text = {"plain": p, "different_case": p.lower(), "leading_space": "  " + p,
                    "chatter_line": p, "same_line": "Sure! " + p,
                    "truncated": p.rsplit(" ", 1)[0], "changed_word": p.replace(" a ", " the ", 1)
                    if " a " in p else "Please " + p}[style]
            resp.prefix.insert(0, text)
            if style == "chatter_line":
                resp.chatter_first = "Sure, first the request:"

    # -- helpers --------------------------------------------------------------------------
    def title_text(self) -> str:
        if self.lang and self.lang != "en":
            code = self.lang.split("+")[0]
            w = LANG_SENTENCES[code][0].split()
            return " ".join(w[:3]).rstrip(".।۔")
        t = self.topic.title()
        for s in self.avoid_substrings:
            t = re.sub(re.escape(s), "", t, flags=re.I)
        if self.avoid_letters:
            t = "".join(ch for ch in t if ch.lower() not in self.avoid_letters)
        return " ".join(t.split()) or "My Plan"

    def note_sentence(self) -> str:
        return self.new_sentence(allow_tricky=False).render()

    def bullet_items(self, count):
        items = []
        for _ in range(count):
            s = self.new_sentence(allow_tricky=False)
            items.append(s.render().rstrip(".!?"))
        return items

    def set_paragraphs(self, resp, target):
        for b in resp.bodies:
            sents = b.sentences()
            while len(sents) < target:
                sents.append(self.new_sentence())
            pars = [Paragraph() for _ in range(target)]
            for j, s in enumerate(sents):
                pars[j * target // len(sents)].sentences.append(s)
            # keep headers/bullets already attached to the old paragraphs
            for old, new in zip(b.paragraphs, pars):
                new.header, new.bullets = old.header, old.bullets
            b.paragraphs = pars

    # -- count adjustment -----------------------------------------------------------------
    def adjust(self, resp: Response):
        """Edit sentences until the rough counts fall inside the planned ranges."""
        for _ in range(600):
            text = resp.render()
            sents = [s for s in resp.free_sentences() if s.raw is None and s.lead is None]
            editable = sents or resp.free_sentences()
            changed = False
            # sentences
            if self.sent_range:
                lo, hi = self.sent_range
                n = approx_sentences(text)
                if n < lo:
                    resp.bodies[-1].paragraphs[-1].sentences.append(self.new_sentence(allow_tricky=False))
                    continue
                if n > hi:
                    for b in resp.bodies:
                        for p in b.paragraphs:
                            if len(p.sentences) > 1 and p.sentences[-1].lead is None and not p.sentences[-1].fixed:
                                p.sentences.pop()
                                changed = True
                                break
                        if changed:
                            break
                    if changed:
                        continue
            # keyword frequencies
            for key, (lo, hi) in self.kw_ranges.items():
                c = len(re.findall(re.escape(key), text, re.I))
                if c < lo:
                    self.rng.choice(editable).extra.append(key.upper() if key in self.kw_upper else key)
                    changed = True
                    break
                if c > hi:
                    if self._remove_extra(resp, lambda w: key in w.lower()):
                        changed = True
                        break
            if changed:
                continue
            # letters
            for letter, (lo, hi) in self.letter_ranges.items():
                c = text.lower().count(letter)
                if c < lo:
                    pool = [w for w in EXTRA_WORDS if letter in w] or [letter * 2]
                    self.rng.choice(editable).extra.append(self.rng.choice(pool))
                    changed = True
                    break
                if c > hi:
                    if self._remove_extra(resp, lambda w: letter in w.lower()):
                        changed = True
                        break
            if changed:
                continue
            # capital words
            if self.caps_range:
                lo, hi = self.caps_range
                c = caps_count(text)
                if c < lo:
                    self.rng.choice(editable).extra.append(self.rng.choice(CAPS_WORDS))
                    continue
                if c > hi and self._remove_extra(resp, lambda w: w.isupper()):
                    continue
            # words
            if self.word_range:
                lo, hi = self.word_range
                n = words(text)
                if n < lo:
                    s = self.rng.choice(editable)
                    if lo - n > 8 and s.raw is None:
                        s.clauses.append(self.draw("clause", self.clause_pool()))
                    elif s.raw is not None and self.lang and self.lang != "en":
                        resp.bodies[-1].paragraphs[-1].sentences.append(self.new_sentence())
                    else:
                        pool = ([w for w in FILLER_WORDS[:14] if self.clause_ok(w)]
                                or [w for w in FILLER_WORDS if self.clause_ok(w)] or ["a"])
                        s.extra.append(self.rng.choice(pool))
                    continue
                if n > hi:
                    if self._shrink(resp):
                        continue
            break

    def _remove_extra(self, resp, pred) -> bool:
        for s in resp.free_sentences():
            for j in range(len(s.extra) - 1, -1, -1):
                if pred(s.extra[j]):
                    del s.extra[j]
                    return True
        return False

    def _shrink(self, resp) -> bool:
        """Remove a filler word, a clause, or a sentence (in that order of preference)."""
        sents = resp.free_sentences()
        for s in sents:
            if s.extra and s.extra[-1] in FILLER_WORDS:
                s.extra.pop()
                return True
        for s in sorted(sents, key=lambda s: -len(s.clauses)):
            if len(s.clauses) > 1:
                s.clauses.pop()
                return True
        for b in resp.bodies:
            for p in b.paragraphs:
                if len(p.sentences) > 1 and p.sentences[-1].lead is None and not p.sentences[-1].fixed:
                    p.sentences.pop()
                    return True
        return False


# --------------------------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------------------------

KINDS = ["good", "loose", "bad", "mixed"]


def generate(examples, seed: int, per_prompt: int):
    rows = []
    for ex in examples:
        for v in range(per_prompt):
            kind = KINDS[v] if v < len(KINDS) else "mixed"
            rng = random.Random("%d:%s:%d" % (seed, ex["key"], v))
            text, variant = Builder(ex, kind, rng).build()
            rows.append({"prompt": ex["prompt"], "response": text, "key": ex["key"], "variant": variant})
    # Empty and whitespace-only responses: every instruction fails in both modes.
    rng = random.Random(seed)
    for ex, text in zip(rng.sample(examples, 6), ["", " ", "\n\n", "\t \n", "", "   "]):
        rows.append({"prompt": ex["prompt"], "response": text, "key": ex["key"], "variant": "empty|"})
    return rows


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--input", default=DEFAULT_INPUT, help="IFEval input_data.jsonl")
    ap.add_argument("--out", default="/tmp/ifeval/responses.jsonl", help="output JSONL")
    ap.add_argument("--seed", type=int, default=1234)
    ap.add_argument("--per-prompt", type=int, default=3, help="responses per prompt (good, loose, bad, mixed...)")
    args = ap.parse_args()
    with open(args.input, encoding="utf-8") as f:
        examples = [json.loads(line) for line in f if line.strip()]
    rows = generate(examples, args.seed, args.per_prompt)
    os.makedirs(os.path.dirname(os.path.abspath(args.out)), exist_ok=True)
    with open(args.out, "w", encoding="utf-8") as f:
        for r in rows:
            f.write(json.dumps(r, ensure_ascii=False) + "\n")
    print("ifeval_responses: %d prompts, %d rows -> %s" % (len(examples), len(rows), args.out))


if __name__ == "__main__":
    main()
