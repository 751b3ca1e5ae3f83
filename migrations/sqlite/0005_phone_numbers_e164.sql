-- Phone numbers in E.164 (+8613800138000), whichever way they came (WeChat's phone button, an
-- SMS code), so that every way finds the same user; a verified phone belongs to one user.
UPDATE users
   SET phone_number = '+' || ltrim(country_code, '+') || pure_phone_number
 WHERE country_code IS NOT NULL AND pure_phone_number IS NOT NULL;

CREATE UNIQUE INDEX users_phone_number ON users (phone_number);
