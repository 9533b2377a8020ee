"""Settlement files: bank statements (camt.053/054, MT940/942) and clearing reports (Adyen,
WeChat Pay, any CSV 对账单 through a column mapping), read as streams of typed records
(``model``). Every parser is pure and streaming: bytes in, records out, a file never held whole;
a file that cannot be read raises :class:`~settlewatch.settlementfiles.model.FileRejected` naming
where, and what is readable but inconsistent is flagged on the record (``Problem``), never
guessed at. Storing and matching the records is the services' job.
"""
