"""The admin pages of the GitHub App: login and sessions (`auth`), the job and plan pages (`routes`,
`views`, `pages`), the knowledge-graph query endpoint (`graph`) and the training page (`learn`).
Takes the job store and the learning loop's data; hands HTML and JSON to a signed-in person.
"""
