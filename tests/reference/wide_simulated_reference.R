# Golden values for the import-wide round trip on tests/data/wide/simulated_wide.csv.
# Run from the repository root:  Rscript tests/reference/wide_simulated_reference.R
# Writes tests/reference/wide_simulated_reference.json (committed; tests read it).
#
# What an analyst would compute by hand: SD from SEM with the arm's real n (for a split
# control, the split n times the number of arms sharing it), then escalc with the split
# control n. Rows without the numbers escalc needs give NA and are left out.
suppressMessages({library(metafor); library(jsonlite)})
d <- read.csv("tests/data/wide/simulated_wide.csv", na.strings = c("", "NA"), colClasses = c(Mean_T = "character"))
d$table_row <- seq_len(nrow(d)) + 1
d$Mean_T <- suppressWarnings(as.numeric(d$Mean_T))
key <- paste(d$Study, d$N_C, d$Mean_C, d$SD_C, d$SEM_C)  # rows sharing one control arm
shared <- as.numeric(table(key)[key])
n_c_real <- d$N_C * shared
d$SD_T <- ifelse(is.na(d$SD_T), d$SEM_T * sqrt(d$N_T), d$SD_T)
d$SD_C <- ifelse(is.na(d$SD_C), d$SEM_C * sqrt(n_c_real), d$SD_C)
d$SD_T[d$SD_T <= 0] <- NA
ok <- !is.na(d$Study) & d$Study != ""
es <- escalc("SMD", m1i = Mean_T, sd1i = SD_T, n1i = N_T, m2i = Mean_C, sd2i = SD_C, n2i = N_C, data = d[ok, ])
es <- es[!is.na(es$yi) & !is.na(es$vi), ]
md <- escalc("MD", m1i = Mean_T, sd1i = SD_T, n1i = N_T, m2i = Mean_C, sd2i = SD_C, n2i = N_C, data = d[ok, ])
md <- md[!is.na(md$yi) & !is.na(md$vi), ]
out <- list(metafor_version = as.character(packageVersion("metafor")), table_row = es$table_row,
            SMD = list(yi = as.numeric(es$yi), vi = as.numeric(es$vi)),
            MD = list(yi = as.numeric(md$yi), vi = as.numeric(md$vi)))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE), "tests/reference/wide_simulated_reference.json")
